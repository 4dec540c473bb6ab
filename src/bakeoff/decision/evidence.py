"""The evidence for each candidate, read from stored results only (no torch): what the decision weighs.

Quality is read at the team's data size from the candidate's learning curve (interpolated between
measured sizes; outside the measured range the nearest measured size is used and flagged), not from the
largest run. Cost and latency: LLMs from the run's estimates for the team's GPU; classical baselines from
what was measured here on CPU (they serve on a CPU box at `decision.cpu_usd_per_hour`). Where `bakeoff
loadtest --run` measured a served candidate on the hardware being decided on (the team's GPU for an LLM, a
CPU for a baseline), that measured capacity replaces the estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from bakeoff import tasks
from bakeoff.decision.costs import CostEvidence
from bakeoff.decision.inputs import DecisionInputs
from bakeoff.decision.measured import MeasuredCapacity, answered, is_lower_bound, measured_capacity
from bakeoff.efficiency.capacity import HOURS_PER_MONTH, TARGET_UTILISATION, plan_batches
from bakeoff.results import RunResults, Timings, TrialRecord


@dataclass(frozen=True)
class Evidence:
    candidate: str
    kind: str  # "llm" | "baseline"
    zero_shot: bool
    quality: float  # the task type's main metric (`quality_metric`) at the team's data size
    quality_ci: tuple[float, float]
    quality_note: str  # how the number was read off the curve
    trial_size: int  # the measured size whose robustness / out-of-scope numbers are used
    perturbed_accuracy: float | None
    paraphrase_accuracy: float | None
    oos_auroc: float | None
    confidently_wrong_rate: float | None
    ece_scaled: float | None
    fine_tune_usd: float
    usd_per_1k_items: float
    usd_per_month: float | None  # at the target load; None when the SLA cannot be met
    p95_ms: float | None  # serving p95 at the planned batch (LLM: estimated on the GPU; baseline: measured here)
    gpus: int  # for serving (0 for CPU baselines)
    memory_gb: float  # fine-tuning memory (LLM; a zero-shot one: its weights) or 0
    meets_sla: bool
    latency_source: str
    # What `quality` / `quality_ci` hold: macro_f1 (classification), record_exact_match (extraction), chrf or
    # judge_win_rate (generation).
    quality_metric: str = "macro_f1"
    oos_fallback_rate: float | None = None  # generation: out-of-scope outputs that decline or redirect
    data_size: int = 0  # the team's labeled examples this evidence was read at (0: unknown, older records)
    costs: CostEvidence | None = None  # with `decision.costs`: expected $ per month, errors and review included

    @property
    def measured_above_data_size(self) -> bool:
        """Trained only on more labeled examples than the team has: its number at that size is not measured."""
        return not self.zero_shot and 0 < self.data_size < self.trial_size

    def as_dict(self) -> dict:
        out = asdict(self)
        if out["costs"] is None:
            del out["costs"]  # without `decision.costs`, results.json's evidence is what it always was
        return out


def _interpolate(curve: list[dict], size: int) -> tuple[float, tuple[float, float], str]:
    sizes = [r["train_size"] for r in curve]
    if size <= sizes[0]:
        r = curve[0]
        note = f"measured at {sizes[0]}" + (
            f" (below: you have {size}, fewer than the smallest measured)" if size < sizes[0] else ""
        )
        return r["quality"], tuple(r["ci"]), note
    if size >= sizes[-1]:
        r = curve[-1]
        note = f"measured at {sizes[-1]}" + (f" (you have {size}: more data may do better)" if size > sizes[-1] else "")
        return r["quality"], tuple(r["ci"]), note
    for lo, hi in zip(curve, curve[1:]):
        if lo["train_size"] <= size <= hi["train_size"]:
            t = (size - lo["train_size"]) / (hi["train_size"] - lo["train_size"])
            mix = lambda a, b, t=t: a + t * (b - a)  # noqa: E731
            ci = (mix(lo["ci"][0], hi["ci"][0]), mix(lo["ci"][1], hi["ci"][1]))
            return (
                mix(lo["quality"], hi["quality"]),
                ci,
                f"interpolated between {lo['train_size']} and {hi['train_size']}",
            )
    raise AssertionError("unreachable")


def _nearest_trial(trials: list[TrialRecord], size: int) -> TrialRecord:
    below = [t for t in trials if t.train_size <= size]
    return max(below, key=lambda t: t.train_size) if below else min(trials, key=lambda t: t.train_size)


def judge_win_rates(analysis: dict, candidates: list[str]) -> dict[str, tuple[float, tuple[float, float], int]]:
    """Per candidate: judge win-rate against the baseline (the baseline itself: 0.5), its CI and the training
    size, averaged over seeds at the largest judged size; empty unless every candidate was judged."""
    judge = analysis.get("judge") or {}
    records, baseline = judge.get("records") or [], judge.get("baseline")
    by_candidate: dict[str, dict[int, list[dict]]] = {}
    for r in records:
        by_candidate.setdefault(r["candidate"], {}).setdefault(r["train_size"], []).append(r)
    out: dict[str, tuple[float, tuple[float, float], int]] = {}
    for name in candidates:
        if name == baseline:
            out[name] = (0.5, (0.5, 0.5), 0)
            continue
        sizes = by_candidate.get(name)
        if not sizes:
            return {}  # one unjudged candidate: quality falls back to chrF for all, so they stay comparable
        size = max(sizes)
        rows = sizes[size]
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        ci = (mean([r["win_rate_ci"][0] for r in rows]), mean([r["win_rate_ci"][1] for r in rows]))
        out[name] = (mean([r["win_rate"] for r in rows]), ci, size)
    return out


def gather(run: RunResults, decision: DecisionInputs, default_size: int, default_load: float) -> list[Evidence]:
    """One Evidence per candidate with at least one finished trial. Quality is the task type's main metric
    (`bakeoff.tasks`), or for generation the judge win-rate when the judge ran on every candidate."""
    metric = tasks.main_metric(run.run.task_type)
    analysis = run.run.analysis or {}
    curves = analysis.get("learning_curves", {})
    estimates = {(e["model"], e["hardware"]["key"]): e for e in analysis.get("gpu_estimates", [])}
    size = decision.labeled_examples or default_size
    load = decision.load_items_per_s or default_load
    serving = run.run.serving or {}
    by_candidate: dict[str, list[TrialRecord]] = {}
    for trial in run.done_trials:
        by_candidate.setdefault(trial.candidate, []).append(trial)
    out = []
    for name, trials in by_candidate.items():
        kind = trials[0].model["kind"]
        zero_shot = trials[0].method == "zero-shot"
        if zero_shot:
            stat = getattr(trials[0].metrics.test, metric)
            f1, ci, note = stat.value, (stat.ci_low, stat.ci_high), "zero-shot: needs no labeled data"
        else:
            f1, ci, note = _interpolate(curves[name]["curve"], size)
        trial = trials[0] if zero_shot else _nearest_trial(trials, size)
        metrics = trial.metrics
        robustness, oos = metrics.robustness or {}, metrics.out_of_scope or {}
        # Robustness in the main metric: classification stores accuracy, the other types their main metric.
        perturbed_key, paraphrase_key = (
            ("mean_perturbed_accuracy", "accuracy") if metric == "macro_f1" else (f"mean_perturbed_{metric}", metric)
        )
        common = dict(
            candidate=name,
            kind=kind,
            zero_shot=zero_shot,
            quality=f1,
            quality_ci=ci,
            quality_note=note,
            trial_size=trial.train_size,
            perturbed_accuracy=robustness.get(perturbed_key),
            paraphrase_accuracy=(robustness.get("paraphrase") or {}).get(paraphrase_key),
            oos_auroc=((oos.get("by_score") or {}).get("max_prob") or {}).get("auroc"),
            confidently_wrong_rate=oos.get("confidently_wrong_rate"),
            ece_scaled=((metrics.calibration or {}).get("after_scaling") or {}).get("ece"),
            quality_metric=metric,
            oos_fallback_rate=oos.get("fallback_detection_rate"),
            data_size=size,
        )
        if kind == "llm":
            record = estimates.get((trial.model_name or name, decision.gpu))
            if record is None:
                continue  # no estimate for this GPU: not_assessed() names it, with the reason
            costs = _llm_costs(record, decision, size, load, zero_shot)
            measured = _measured_on(serving.get(name), decision.gpu, decision)
            if measured is not None:
                usd_hour = record["hardware"]["usd_per_hour"] * record["capacity"]["gpus_per_replica"]
                costs |= _measured_costs(measured, usd_hour, record["capacity"]["gpus_per_replica"], decision, load)
            out.append(Evidence(**common, **costs))
        else:
            costs = _baseline_costs(trial.timings, decision, load)
            measured = _measured_on(serving.get(name), "cpu", decision)
            if measured is not None:
                costs |= _measured_costs(measured, decision.cpu_usd_per_hour, 0, decision, load)
            out.append(Evidence(**common, **costs))
    if metric == "chrf":
        out = _with_judge(out, judge_win_rates(analysis, [e.candidate for e in out]), analysis)
    return out


def _with_judge(evidence: list[Evidence], rates: dict, analysis: dict) -> list[Evidence]:
    """Generation quality as the judge's win-rate against its baseline, when every candidate was judged."""
    if not rates:
        return evidence
    baseline = analysis["judge"]["baseline"]
    return [
        replace(
            e,
            quality=rates[e.candidate][0],
            quality_ci=rates[e.candidate][1],
            quality_metric="judge_win_rate",
            quality_note=(
                "the baseline of the judge (0.5 by definition)"
                if e.candidate == baseline
                else f"judge win-rate against {baseline} at {rates[e.candidate][2]} examples"
            ),
        )
        for e in evidence
    ]


def not_assessed(run: RunResults, decision: DecisionInputs, evidence: list[Evidence]) -> dict[str, str]:
    """Candidates with finished trials that have no evidence, each with why (so none vanishes silently)."""
    assessed = {e.candidate for e in evidence}
    done = {t.candidate for t in run.done_trials}
    failed = {t.candidate for t in run.trials if not t.done} - done
    reasons = {
        name: f"no cost or latency estimate on `{decision.gpu}`: add it to `efficiency.gpus` and re-run "
        "(trials are kept)"
        for name in sorted(done - assessed)
    }
    reasons |= {name: "no finished trial" for name in sorted(failed)}
    stored = {t.candidate for t in run.trials}
    planned = [c.get("name") for c in ((run.run.spec or {}).get("candidates") or [])]
    reasons |= {name: "not run yet (the run stopped before it)" for name in planned if name and name not in stored}
    return reasons


def _measured_on(entry: dict | None, hardware: str, decision: DecisionInputs) -> MeasuredCapacity | None:
    """A load test of this candidate on the hardware being decided on, judged at the decision's SLA. None
    (the estimate decides) for a test that measured nothing (no answered request: a wrong key, a dead
    server) or only a lower bound (every rate tried met the SLA: its top rate is not the capacity)."""
    if not entry or entry.get("hardware") != hardware:
        return None
    if not answered(entry):
        return None
    measured = measured_capacity(entry, decision.sla_p95_ms)
    if is_lower_bound(measured, entry):
        return None
    if measured is None:  # no step met the SLA: the candidate measurably cannot, at any rate tried
        sla = decision.sla_p95_ms or entry["sla_p95_ms"]
        return MeasuredCapacity(
            0.0,
            min((s["latency_ms_p95"] for s in entry["steps"] if s["latency_ms_p95"]), default=float("inf")),
            sla,
            hardware,
            entry.get("measured_at", ""),
        )
    return measured


def _measured_costs(
    measured: MeasuredCapacity,
    usd_per_hour_per_replica: float,
    gpus_per_replica: int,
    decision: DecisionInputs,
    load: float,
) -> dict:
    """Replicas for the load at the measured rate (it already meets the SLA: no utilisation margin on top)."""
    source = (
        f"measured by HTTP load test on {measured.hardware}: {measured.items_per_s:.1f} items/s within p95 "
        f"{measured.sla_p95_ms:.0f} ms ({measured.measured_at[:10]})"
    )
    if measured.items_per_s <= 0:
        return dict(usd_per_month=None, p95_ms=measured.latency_ms_p95, gpus=0, meets_sla=False, latency_source=source)
    replicas = max(1, -(-load // measured.items_per_s))
    return dict(
        usd_per_1k_items=usd_per_hour_per_replica / 3600 / measured.items_per_s * 1000,
        usd_per_month=int(replicas) * usd_per_hour_per_replica * HOURS_PER_MONTH,
        p95_ms=measured.latency_ms_p95,
        gpus=int(replicas) * gpus_per_replica,
        meets_sla=True,
        latency_source=source,
    )


def _llm_costs(record: dict, decision: DecisionInputs, size: int, load: float, zero_shot: bool = False) -> dict:
    """Costs on the team's GPU: fine-tune $ scaled to their example count, serving from the latency estimates.
    A zero-shot candidate is not fine-tuned: no fine-tune cost, and the memory it needs is its weights."""
    tune, serve, plan = record["fine_tune"], record["inference"], record["capacity"]
    assumed_examples = max(1, record["workload"]["train_examples"])
    latencies = {int(b): ms for b, ms in serve["latency_ms_by_batch"].items()}
    usd_hour = record["hardware"]["usd_per_hour"]
    # efficiency/capacity.py's rule (p95 <= 2 x batch service time, replicas at 70% utilisation), on the stored
    # estimates.
    chosen = plan_batches(latencies, load, decision.sla_p95_ms, plan["gpus_per_replica"], usd_hour)
    batch = chosen.batch_size if chosen.meets_sla else min(latencies)
    items_per_s_per_replica = batch / (latencies[batch] / 1000)
    return dict(
        fine_tune_usd=0.0 if zero_shot else tune["cost_usd"] * size / assumed_examples,
        usd_per_1k_items=usd_hour * plan["gpus_per_replica"] / 3600 / items_per_s_per_replica * 1000,
        usd_per_month=chosen.usd_per_month if chosen.meets_sla else None,
        p95_ms=2 * latencies[batch],
        gpus=chosen.gpus,
        memory_gb=tune["memory_gb"].get("weights", tune["memory_gb"]["total"])
        if zero_shot
        else tune["memory_gb"]["total"],
        meets_sla=chosen.meets_sla,
        latency_source=f"estimated on {record['hardware']['name']} (batch {batch})",
    )


def _baseline_costs(timings: Timings, decision: DecisionInputs, load: float) -> dict:
    items_per_s = timings.items_per_s_at_best or timings.inference_items_per_s or 1.0
    p95 = timings.latency_ms_p95 or 0.0
    boxes = max(1, -(-load // (items_per_s * TARGET_UTILISATION)))
    sla = decision.sla_p95_ms
    return dict(
        fine_tune_usd=0.0,
        usd_per_1k_items=decision.cpu_usd_per_hour / 3600 / items_per_s * 1000,
        usd_per_month=int(boxes) * decision.cpu_usd_per_hour * HOURS_PER_MONTH,
        p95_ms=p95,
        gpus=0,
        memory_gb=0.0,
        meets_sla=sla is None or p95 <= sla,
        latency_source="measured on this run's CPU (batch 1)",
    )
