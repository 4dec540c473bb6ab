"""The recommendation: which candidate to fine-tune, why, and what would change the answer.

Pure functions over stored results (no torch). Steps:
1. Hard constraints exclude candidates, each with the number that failed (quality floor at the team's
   data size, fine-tune budget, $ per 1k items, $ per month, SLA, GPU count, memory).
2. The rest are ranked by a weighted score whose weights come from the answers: quality always; the
   robustness and out-of-scope terms weigh more as the expected out-of-scope share grows; cost and latency
   weigh more when a budget or an SLA is given. The Pareto frontier (quality up, cost and p95 down) is
   reported beside it.
3. Ties: when the top two are within statistical noise (the paired bootstrap on the same test items, or
   overlapping macro-F1 intervals where no paired test applies), it is a tie and the cheaper one wins. When a classical
   baseline ties with the best LLM, the answer
   is "no LLM needed".
4. Sensitivity: the decision is re-run with other answers (out-of-scope share, data size, budget, SLA),
   and every change that flips it is reported ("if more than 15% of traffic is out of scope: B").

With `decision.costs` (decision/costs.py), steps 2 and 3 are money instead: the candidates that pass the
constraints are ranked by expected $ per month (errors and human review at a threshold chosen on validation,
serving, the fine-tune amortised), and the top two are compared with a paired bootstrap of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from bakeoff import tasks
from bakeoff.decision.costs import CostTable, ItemScores, cost_table, curves, paired_difference, price
from bakeoff.decision.evidence import Evidence, gather, not_assessed
from bakeoff.decision.inputs import DecisionInputs, merged
from bakeoff.results import RunResults

OPEN_ENDED_CAUTION = (
    "Caution: the task is open-ended (generation), but this run measured classification by label "
    "scoring; "
    "these scores are a proxy that does not carry over to generation quality, so robustness and "
    "out-of-scope "
    "behaviour were weighted up and quality down. Evaluate generated outputs before committing."
)


def _exclusion(e: Evidence, d: DecisionInputs) -> str | None:
    """The first hard constraint `e` fails, stated with its number, or None."""
    if d.min_macro_f1 is not None and e.quality < d.min_macro_f1:
        label = tasks.metric_label(e.quality_metric)
        return f"{label} {100 * e.quality:.1f}% ({e.quality_note}) is below the floor {100 * d.min_macro_f1:.0f}%"
    if d.max_fine_tune_usd is not None and e.fine_tune_usd > d.max_fine_tune_usd:
        return f"fine-tune ${_usd(e.fine_tune_usd)} exceeds the budget ${_usd(d.max_fine_tune_usd)}"
    if d.sla_p95_ms is not None and not e.meets_sla:
        return f"p95 {e.p95_ms:.0f} ms cannot meet the {d.sla_p95_ms:.0f} ms SLA ({e.latency_source})"
    if d.max_usd_per_1k_items is not None and e.usd_per_1k_items > d.max_usd_per_1k_items:
        return f"${_usd(e.usd_per_1k_items)} per 1k items exceeds ${_usd(d.max_usd_per_1k_items)}"
    if d.max_usd_per_month is not None and (e.usd_per_month or math.inf) > d.max_usd_per_month:
        return f"${e.usd_per_month or math.inf:,.0f} per month exceeds ${d.max_usd_per_month:,.0f}"
    if d.max_gpus is not None and e.gpus > d.max_gpus:
        return f"needs {e.gpus} GPUs for the load, {d.max_gpus} available"
    if d.memory_limit_gb is not None and e.memory_gb > d.memory_limit_gb:
        what = "its weights need" if e.zero_shot else "fine-tuning needs"
        return f"{what} {e.memory_gb:.3g} GB, limit {d.memory_limit_gb:g} GB"
    return None


def _usd(value: float) -> str:
    """Dollars with the digits that tell two small amounts apart ($0.00017, not $0.00; never 1.7e-05)."""
    if value >= 0.01 or value <= 0:
        return f"{value:.2f}"
    return f"{value:.{1 - math.floor(math.log10(value))}f}".rstrip("0")  # two significant digits at most, written out


def weights(d: DecisionInputs) -> dict[str, float]:
    """Score weights from the answers. Quality terms are in [0, 1]; cost and latency are charged per factor
    of ten over the cheapest / fastest candidate, so 10x the cost weighs like `cost` points of macro-F1."""
    share = d.out_of_scope_share
    budget = any(v is not None for v in (d.max_fine_tune_usd, d.max_usd_per_1k_items, d.max_usd_per_month))
    # Open-ended (generation) traffic is free-form: holding up under perturbed and unseen inputs, and falling
    # back well out of scope, say more about how a model copes with it, so robustness / out-of-scope weigh
    # more. When the run measured classification for an open-ended task, quality is a proxy, so it also
    # weighs less.
    open_ended = d.task_specificity == "open-ended"
    proxy = open_ended and d.task_type == "classification"
    return {
        "quality": 0.6 if proxy else 1.0,
        "robustness": 0.3 + share + (0.5 if open_ended else 0.0),
        "out_of_scope": 0.1 + 3.0 * share + (0.3 if open_ended else 0.0),
        "calibration": 0.1,
        "cost": 0.1 if budget else 0.05,
        "latency": 0.1 if d.sla_p95_ms is not None else 0.0,
    }


def score(e: Evidence, pool: list[Evidence], w: dict[str, float]) -> float:
    """Higher is better."""
    cheapest = max(1.0, min(x.usd_per_month or 0.0 for x in pool))  # floors: $1/month, 1 ms
    fastest = max(1.0, min(x.p95_ms or 0.0 for x in pool))
    return (
        w["quality"] * e.quality
        + w["robustness"] * (e.perturbed_accuracy if e.perturbed_accuracy is not None else e.quality)
        + w["out_of_scope"] * _out_of_scope_term(e)
        - w["calibration"] * (e.ece_scaled or 0.0)
        - w["cost"] * math.log10(max(1.0, e.usd_per_month or 0.0) / cheapest)
        - w["latency"] * math.log10(max(1.0, e.p95_ms or 0.0) / fastest)
    )


def _out_of_scope_term(e: Evidence) -> float:
    """Classification: out-of-scope AUROC; generation: share of out-of-scope outputs that fall back; else 0.5."""
    if e.oos_auroc is not None:
        return e.oos_auroc
    return e.oos_fallback_rate if e.oos_fallback_rate is not None else 0.5


def pareto(pool: list[Evidence]) -> list[str]:
    """Candidates no other beats on quality, $ per month and p95 at once."""

    def dominates(a: Evidence, b: Evidence) -> bool:
        ka = (-a.quality, a.usd_per_month or 0.0, a.p95_ms or 0.0)
        kb = (-b.quality, b.usd_per_month or 0.0, b.p95_ms or 0.0)
        return all(x <= y for x, y in zip(ka, kb)) and ka != kb

    return [e.candidate for e in pool if not any(dominates(o, e) for o in pool)]


def _tied(a: Evidence, b: Evidence, comparisons: list[dict] | None = None) -> bool:
    """Within noise: the paired bootstrap on the same test items when both were compared at the trial size
    used (its CI for the macro-F1 difference includes 0); otherwise, overlapping macro-F1 intervals."""
    judged = "judge_win_rate" in (a.quality_metric, b.quality_metric)  # the paired tests are on chrF, not the judge
    for c in [] if judged else comparisons or []:
        if {c["a"], c["b"]} == {a.candidate, b.candidate} and c["train_size"] == a.trial_size == b.trial_size:
            return bool(c["tie"])
    return a.quality_ci[0] <= b.quality_ci[1] and b.quality_ci[0] <= a.quality_ci[1]


def decide(
    evidence: list[Evidence], d: DecisionInputs, comparisons: list[dict] | None = None, table: CostTable | None = None
) -> dict:
    """The choice and its reasons, for one set of answers (by money when `table` prices `decision.costs`)."""
    excluded = {e.candidate: reason for e in evidence if (reason := _exclusion(e, d))}
    # Like with like: a candidate trained only on more data than the team has is read at its smallest size, which
    # flatters it (QLoRA run at 100 examples "won" the what-if for 32 over rows measured at 32). Where others were
    # measured at the team's size or below, it steps aside; where none was, all are read at their smallest, flagged.
    if any(not e.measured_above_data_size for e in evidence if not e.zero_shot):
        for e in evidence:
            if e.measured_above_data_size and e.candidate not in excluded:
                excluded[e.candidate] = (
                    f"trained only on {e.trial_size} or more labeled examples; with {e.data_size} its quality is not "
                    f"measured (add {e.data_size} to its train sizes)"
                )
    pool = [e for e in evidence if e.candidate not in excluded]
    if table is not None:
        return _decide_by_cost(pool, excluded, table)
    if not pool:
        return _nobody(excluded)
    w = weights(d)
    ranked = sorted(pool, key=lambda e: score(e, pool, w), reverse=True)
    choice, tie, reason = ranked[0], None, "highest weighted score"
    if len(ranked) > 1 and _tied(ranked[0], ranked[1], comparisons):
        cheaper = min(ranked[:2], key=lambda e: (e.usd_per_month or 0.0, e.fine_tune_usd))
        tie = [ranked[0].candidate, ranked[1].candidate]
        choice, reason = cheaper, "tie within noise with the runner-up, broken by cost"
    llms = [e for e in pool if e.kind == "llm"]
    baselines = [e for e in pool if e.kind == "baseline"]
    no_llm = False
    if llms and baselines:
        best_llm = max(llms, key=lambda e: e.quality)
        best_baseline = max(baselines, key=lambda e: e.quality)
        if best_baseline.quality >= best_llm.quality or _tied(best_baseline, best_llm, comparisons):
            no_llm, choice = True, best_baseline
            reason = (
                f"a classical baseline is within noise of the best LLM ({best_llm.candidate}): no LLM needed"
                if best_baseline.quality < best_llm.quality
                else "a classical baseline scores at least as well as every LLM"
            )
    return {
        "choice": choice.candidate,
        "excluded": excluded,
        "ranking": [(e.candidate, round(score(e, pool, w), 4)) for e in ranked],
        "pareto": pareto(pool),
        "tie": tie,
        "no_llm_needed": no_llm,
        "reason": reason,
        "weights": w,
    }


def _nobody(excluded: dict[str, str]) -> dict:
    return {
        "choice": None,
        "excluded": excluded,
        "ranking": [],
        "pareto": [],
        "tie": None,
        "no_llm_needed": False,
        "reason": "no candidate meets every constraint",
    }


def _decide_by_cost(pool: list[Evidence], excluded: dict[str, str], table: CostTable) -> dict:
    """The cheapest per month, errors and reviews included; within noise of the runner-up when the paired
    interval of the difference includes $0 (said, not overruled: the expected cost is still the better bet)."""
    for e in pool:
        if e.costs is None:
            excluded[e.candidate] = f"its trials at {e.trial_size} examples were not costed"
        elif e.costs.usd_per_month_total is None:
            excluded[e.candidate] = "no serving plan meets the load within the SLA, so its monthly total has no price"
    pool = [e for e in pool if e.candidate not in excluded]
    if not pool:
        return _nobody(excluded) | {"costs": {"comparison": None}}
    ranked = sorted(pool, key=lambda e: (e.costs.usd_per_month_total, e.candidate))
    choice, tie, reason = ranked[0], None, "lowest expected cost per month, errors and reviews included"
    comparison = paired_difference(ranked[0], ranked[1], table) if len(ranked) > 1 else None
    if comparison is not None and comparison["within_noise"]:
        tie = [ranked[0].candidate, ranked[1].candidate]
        reason += f", within noise of {ranked[1].candidate} (the interval of the difference includes $0)"
    no_llm = choice.kind == "baseline" and any(e.kind == "llm" for e in pool)
    if no_llm:
        reason = "a classical baseline costs least per month, errors and reviews included: no LLM needed"
    return {
        "choice": choice.candidate,
        "excluded": excluded,
        "ranking": [(e.candidate, round(e.costs.usd_per_month_total, 2)) for e in ranked],
        "pareto": pareto(pool),
        "tie": tie,
        "no_llm_needed": no_llm,
        "reason": reason,
        "weights": None,
        "costs": {"comparison": comparison},
    }


def _evidence(
    run: RunResults, d: DecisionInputs, default_size: int, default_load: float, table: CostTable | None
) -> list[Evidence]:
    """`gather`'s evidence, each priced by `table` when the decision has costs."""
    evidence = gather(run, d, default_size, default_load)
    return evidence if table is None else [replace(e, costs=price(e, table)) for e in evidence]


COST_FACTORS = (0.25, 0.5, 2.0, 10.0)  # what-ifs of the review and error costs


def _what_if(
    run: RunResults,
    d: DecisionInputs,
    default_size: int,
    default_load: float,
    base_choice: str | None,
    table: CostTable | None = None,
    items: Mapping[str, ItemScores] | None = None,
) -> list[str]:
    """Answers that would flip the choice, tried one at a time."""
    flips = []
    sizes = sorted({t.train_size for t in run.trials if t.train_size})
    trials = [
        ("out_of_scope_share", v, f"if {100 * v:.0f}% of traffic is out of scope") for v in (0.0, 0.05, 0.15, 0.3, 0.5)
    ]
    trials += [("labeled_examples", n, f"with {n} labeled examples") for n in sizes]
    for key, label in (("max_usd_per_month", "a monthly budget of ${:,.0f}"), ("sla_p95_ms", "a p95 SLA of {:.0f} ms")):
        current = getattr(d, key)
        for factor in (0.25, 0.5, 2.0, 4.0):
            if current is not None:
                trials.append((key, current * factor, "with " + label.format(current * factor)))
    if d.costs is not None:
        for key, label in (("review", "if review costs ${:g} per item"), ("error", "if a wrong answer costs ${:g}")):
            current = getattr(d.costs, key)
            for factor in COST_FACTORS if current else ():
                costs = d.costs.model_dump() | {key: current * factor}
                trials.append(("costs", costs, label.format(current * factor)))
    comparisons = (run.run.analysis or {}).get("paired_comparisons")
    load = d.load_items_per_s or default_load
    for key, value, sentence in trials:
        if getattr(d, key) == value:
            continue
        what_if = d.but(**{key: value})
        priced = table if key != "costs" else cost_table(run, items or {}, what_if.costs, load)
        evidence = _evidence(run, what_if, default_size, default_load, priced)
        alternative = decide(evidence, what_if, comparisons, priced)["choice"]
        if alternative != base_choice:
            flips.append(f"{sentence}: {alternative or 'no candidate qualifies'}")
    return flips


def recommend(run: RunResults, items: Mapping[str, ItemScores] | None = None) -> dict:
    """The recommendation for the run's `decision` answers, with evidence, rationale and sensitivity
    (the shape of `bakeoff.results.Recommendation`, as results.json stores it). `items`: the trials' stored
    per-item probabilities (`costs.read_item_scores`), needed only with `decision.costs`."""
    from bakeoff.config import EfficiencySpec  # pydantic only: still no torch

    spec = run.run.spec
    d = DecisionInputs.of(spec.get("decision"), run.run.task_type)
    default_size = max(spec["grid"]["train_sizes"])
    default_load = EfficiencySpec.model_validate(spec.get("efficiency") or {}).load_items_per_s
    load = d.load_items_per_s or default_load
    table = None if d.costs is None else cost_table(run, items or {}, d.costs, load)
    evidence = _evidence(run, d, default_size, default_load, table)
    outcome = decide(evidence, d, (run.run.analysis or {}).get("paired_comparisons"), table)
    if table is not None:
        outcome["costs"] |= {
            "volume_items_per_month": table.volume,
            "amortize_months": table.costs.amortize_months,
            "notes": list(table.notes),
            "curves": curves(evidence, table),
        }
    outcome["evidence"] = [e.as_dict() for e in evidence]
    outcome["not_assessed"] = not_assessed(run, d, evidence)
    outcome["answers"] = d.model_dump() | {
        "labeled_examples": d.labeled_examples or default_size,
        "load_items_per_s": d.load_items_per_s or default_load,
    }
    outcome["sensitivity"] = _what_if(run, d, default_size, default_load, outcome["choice"], table, items)
    outcome["rationale"] = rationale(outcome, {e.candidate: e for e in evidence})
    return outcome


def rationale(outcome: dict, evidence: dict[str, Evidence]) -> str:
    """A short paragraph built from the numbers."""
    answers = outcome["answers"]
    unassessed = "".join(f" Not assessed: {c} ({r})." for c, r in outcome.get("not_assessed", {}).items())
    proxy = answers.get("task_type", "classification") == "classification"
    caution = f" {OPEN_ENDED_CAUTION}" if answers.get("task_specificity") == "open-ended" and proxy else ""
    if outcome["choice"] is None:
        reasons = "; ".join(f"{c}: {r}" for c, r in outcome["excluded"].items())
        return (
            f"No candidate meets every constraint ({reasons}). Relax a constraint or add candidates."
            f"{unassessed}{caution}"
        )
    e = evidence[outcome["choice"]]
    low, high = e.quality_ci
    if outcome["no_llm_needed"]:
        verb = "no LLM needed, use "
    elif e.kind == "baseline":
        verb = "use the classical baseline "
    elif e.zero_shot:
        verb = "use zero-shot "
    else:
        verb = "fine-tune "
    parts = [
        f"Recommendation: {verb}{e.candidate}.",
        f"At {answers['labeled_examples']} labeled examples it reaches "
        f"{tasks.metric_label(e.quality_metric)} {100 * e.quality:.1f}% "
        f"[{100 * low:.1f}, {100 * high:.1f}] ({e.quality_note})",
    ]
    if e.perturbed_accuracy is not None:
        parts[-1] += f", {100 * e.perturbed_accuracy:.1f}% on perturbed inputs"
    if e.oos_auroc is not None:
        parts[-1] += f", out-of-scope AUROC {e.oos_auroc:.2f}"
    elif e.oos_fallback_rate is not None:
        parts[-1] += f", falls back on {100 * e.oos_fallback_rate:.0f}% of out-of-scope items"
    parts[-1] += "."
    cost = (
        f"Serving {answers['load_items_per_s']:g} items/s costs ~${e.usd_per_month:,.0f}/month"
        if e.usd_per_month is not None
        else "Serving cost n/a"
    )
    parts.append(
        f"{cost} (${_usd(e.usd_per_1k_items)} per 1k items, p95 {e.p95_ms:.0f} ms, {e.latency_source}); fine-tune "
        f"${_usd(e.fine_tune_usd)}."
    )
    if e.costs is not None and e.costs.usd_per_month_total is not None:
        parts.append(_cost_sentence(e, outcome["costs"]))
    parts.append(f"Why: {outcome['reason']}.")
    if outcome["excluded"]:
        parts.append("Excluded: " + "; ".join(f"{c} ({r})" for c, r in outcome["excluded"].items()) + ".")
    if outcome["sensitivity"]:
        parts.append("What would change the answer: " + "; ".join(outcome["sensitivity"][:4]) + ".")
    return " ".join(parts) + unassessed + caution


def with_answers(run: RunResults, answers: dict) -> RunResults:
    """The same results with other decision answers (for `bakeoff recommend key=value` and what-ifs)."""
    spec = dict(run.run.spec)
    spec["decision"] = merged(dict(spec.get("decision") or {}), answers)
    return run.with_spec(spec)


def _cost_sentence(e: Evidence, section: dict) -> str:
    """The choice's expected monthly total, what it is made of, its automation rate, and the runner-up's gap."""
    c = e.costs
    low, high = c.usd_per_month_total_ci
    text = (
        f"With your costs, at {section['volume_items_per_month']:,.0f} items/month: "
        f"~${c.usd_per_month_total:,.0f}/month in all [{low:,.0f}, {high:,.0f}] "
        f"(wrong answers ${c.usd_per_month_errors:,.0f}, reviews "
        f"${c.usd_per_month_review:,.0f}, serving ${c.usd_per_month_serving:,.0f}, fine-tune "
        f"${c.usd_per_month_fine_tune:,.2f} over {section['amortize_months']:g} months); it answers items at "
        f"confidence {c.threshold:.2f} or more (threshold chosen on validation) and sends the rest to a person: "
        f"{100 * c.automation_rate:.0f}% automated [{100 * c.automation_rate_ci[0]:.0f}, "
        f"{100 * c.automation_rate_ci[1]:.0f}] (on {c.test_items} test items, trained on {c.measured_at} examples)."
    )
    comparison = section.get("comparison")
    if comparison and comparison["cheaper"] == e.candidate:
        low, high = comparison["ci"]
        how = "paired bootstrap on the same test items" if comparison["paired"] else "bootstrap, different test items"
        text += (
            f" {comparison['other']} costs ${comparison['usd_per_month_difference']:,.0f}/month more "
            f"[{low:,.0f}, {high:,.0f}] ({how})."
        )
    return text
