"""Render stored results: a terminal table, summary.md and results.json. Pure: no torch, no models.

Everything here reads the typed records of `bakeoff.results` (`RunResults`, `TrialRecord`, `Stat`), whose
fields and descriptions are results.json's schema (`bakeoff.results/1`); results.json itself is written in
the store's shape (`results_json`). Sections whose inner shape belongs to one stage (robustness, out-of-scope,
calibration, the cross-trial analysis, load tests) are JSON mappings there, read here by key.
"""

from __future__ import annotations

import json

from rich.table import Table

from bakeoff import tasks
from bakeoff.report import task_tables
from bakeoff.report.cost_tables import cost_lines, cost_rows
from bakeoff.report.task_tables import number as _number
from bakeoff.report.task_tables import pct as _pct
from bakeoff.report.task_tables import score, status_text, with_ci
from bakeoff.results import RunMeta, RunResults, TrialRecord

SCHEMA = "bakeoff.results/1"


def rows(trials: list[TrialRecord]) -> list[dict[str, str]]:
    """One display row per trial, in run order."""
    out = []
    for trial in trials:
        test = trial.metrics.test if trial.metrics else None
        train = trial.metrics.train if trial.metrics else None
        timings = trial.timings
        out.append(
            {
                "candidate": trial.candidate,
                "method": trial.method,
                "train n": str(trial.train_size) if trial.train_size else "0",
                "seed": str(trial.seed),
                "test acc % [95% CI]": with_ci(test and test.accuracy),
                "test macro-F1 % [95% CI]": with_ci(test and test.macro_f1),
                "train acc %": _pct(score(train, "accuracy")),
                "fine-tune s": _number(timings and timings.fine_tune_s),
                "train tok/s": _number(timings and timings.train_tokens_per_s, 0),
                "infer items/s": _number(timings and timings.inference_items_per_s),
                "peak MB": _number(timings and timings.peak_memory_mb, 0),
                "status": status_text(trial),
            }
        )
    return out


TERMINAL_COLUMNS = {  # summary.md has every column; the terminal gets the ones that decide
    "candidate": "candidate",
    "method": "method",
    "train n": "n",
    "test acc % [95% CI]": "test acc % [95% CI]",
    "test macro-F1 % [95% CI]": "macro-F1 % [95% CI]",
    "train acc %": "train acc",
    "fine-tune s": "tune s",
    "infer items/s": "items/s",
    "peak MB": "peak MB",
}


def terminal_table(title: str, run: RunResults) -> Table:
    kind = run.run.task_type
    if kind != "classification":
        return _plain_table(title, task_tables.quality_rows(run.trials, kind))
    table = Table(title=title, show_lines=False, pad_edge=False)
    for header in TERMINAL_COLUMNS.values():
        table.add_column(header, justify="left" if header in ("candidate", "method") else "right", overflow="fold")
    for trial, row in zip(run.trials, rows(run.trials)):
        if not trial.done:
            table.add_row(row["candidate"], row["method"], row["train n"], f"[red]{row['status']}[/red]", *[""] * 5)
            continue
        table.add_row(*(row[key] for key in TERMINAL_COLUMNS))
    return table


def _plain_table(title: str, table_rows: list[dict[str, str]]) -> Table:
    table = Table(title=title, pad_edge=False)
    for header in table_rows[0] if table_rows else {"candidate": ""}:
        table.add_column(header, justify="left" if header in ("candidate", "method") else "right", overflow="fold")
    for row in table_rows:
        table.add_row(*row.values())
    return table


def robustness_table(run: RunResults) -> Table:
    kind = run.run.task_type
    if kind != "classification":
        return _plain_table("generalization and out-of-scope", task_tables.robustness_rows(run.trials, kind))
    table = Table(title="generalization, out-of-scope, calibration", pad_edge=False)
    table_rows = robustness_rows(run.trials)
    for header in table_rows[0] if table_rows else {"candidate": ""}:
        table.add_column(header, justify="left" if header == "candidate" else "right", overflow="fold")
    for row in table_rows:
        table.add_row(*row.values())
    return table


def _get(record: dict | None, *keys):
    for key in keys:
        if not isinstance(record, dict) or key not in record or record[key] is None:
            return None
        record = record[key]
    return record


def robustness_rows(trials: list[TrialRecord]) -> list[dict[str, str]]:
    """Beyond accuracy, one row per finished trial: generalization, out-of-scope, calibration."""
    out = []
    for trial in trials:
        metrics = trial.metrics
        if not trial.done or metrics is None:
            continue
        robustness = metrics.robustness or {}
        oos = metrics.out_of_scope or {}
        calibration = metrics.calibration or {}
        flag = _get(metrics.memorization, "flag")
        out.append(
            {
                "candidate": trial.candidate,
                "train n": str(trial.train_size),
                "train acc": _pct(score(metrics.train, "accuracy")),
                "test acc": _pct(score(metrics.test, "accuracy")),
                "clean test acc": _pct(score(metrics.test_clean, "accuracy")),
                "perturbed acc (worst)": "-"
                if robustness.get("mean_perturbed_accuracy") is None
                else f"{_pct(robustness['mean_perturbed_accuracy'])} ({robustness.get('worst_perturbation')} "
                f"{_pct(robustness['perturbations'][robustness['worst_perturbation']]['accuracy'])})",
                "paraphrase acc": _pct(_get(robustness, "paraphrase", "accuracy")),
                "OOS AUROC": _number(_get(oos, "by_score", "max_prob", "auroc"), 3),
                "OOS conf. wrong %": _pct(oos.get("confidently_wrong_rate")),
                "abstain %": _pct(_get(oos, "threshold", "abstention_rate")),
                "ECE -> scaled": "-"
                if calibration.get("ece") is None
                else f"{calibration['ece']:.3f} -> {_number(_get(calibration, 'after_scaling', 'ece'), 3)}",
                "memorized?": f"YES (gap {_pct(_get(metrics.memorization, 'gap'))})"
                if flag
                else ("no" if flag is not None else "-"),
            }
        )
    return out


def efficiency_rows(trials: list[TrialRecord]) -> list[dict[str, str]]:
    """Measured next to estimated on the hardware the run used, per LLM trial, plus serving latency."""
    out = []
    for trial in trials:
        timings, efficiency = trial.timings, trial.efficiency
        if not trial.done or timings is None or not timings.latency_ms_p50:
            continue
        out.append(
            {
                "candidate": trial.candidate,
                "train n": str(trial.train_size),
                "step s meas / est": "-"
                if not efficiency or not efficiency.get("measured_step_s")
                else f"{efficiency['measured_step_s']:.2f} / {efficiency['estimated_step_s']:.2f} "
                f"(x{efficiency['step_ratio_measured_over_estimated']:.2f})",
                "latency b=1 ms p50/p95/p99": f"{timings.latency_ms_p50:.1f} / {timings.latency_ms_p95:.1f} / "
                f"{_number(timings.latency_ms_p99)}",
                "latency est ms": "-"
                if not efficiency or efficiency.get("estimated_latency_ms_b1") is None
                else f"{efficiency['estimated_latency_ms_b1']:.1f} "
                f"(x{efficiency['latency_ratio_measured_over_estimated']:.2f})",
                "best batch items/s": f"{timings.items_per_s_at_best:.1f} (b={timings.best_batch})"
                if timings.best_batch
                else "-",  # generation trials time decoding one item at a time (decode tok/s, TTFT) instead
                "peak MB": _number(timings.peak_memory_mb, 0),
            }
        )
    return out


def _batch1(latency_by_batch: dict) -> float:
    return latency_by_batch[1] if 1 in latency_by_batch else latency_by_batch["1"]  # JSON turns int keys into strings


def estimate_row(record: dict) -> dict[str, str]:
    """One estimate record (efficiency.plan) as display cells: `bakeoff estimate` and the reports share it."""
    arch, tune, serve, plan, hw = (
        record["architecture"],
        record["fine_tune"],
        record["inference"],
        record["capacity"],
        record["hardware"],
    )
    return {
        "model": record["model"],
        "GPU": hw["key"],
        "type": f"MoE {arch['num_experts']}x, top-{arch['experts_per_token']}" if arch["is_moe"] else "dense",
        "params total/active": f"{arch['params_total'] / 1e9:.2f}B / {arch['params_active'] / 1e9:.2f}B",
        "KV KB/token": f"{arch['kv_cache_bytes_per_token']['bfloat16'] / 1024:.0f}",
        "tune mem GB": f"{tune['memory_gb']['total']:.1f}"
        + (f" ({tune['gpus_needed']} GPUs)" if tune["gpus_needed"] > 1 else ""),
        "tune time": f"{tune['time_s'] / 60:.1f} min",
        "tune $": f"{tune['cost_usd']:.2f}",
        "TTFT b=1 ms": _number(serve.get("prefill_ms_batch1"), 1),  # absent from estimates stored before it
        "latency b=1 ms": f"{_batch1(serve['latency_ms_by_batch']):.1f}",
        "items/s/GPU": f"{serve['items_per_s_at_best']:.0f}",
        "$/1k items": f"{serve['cost_usd_per_1k_items']:.4f}",
        "GPUs for SLA": str(plan["gpus"]) if plan["meets_sla"] else "SLA not met",
        "$/month": f"{plan['usd_per_month']:,.0f}" if plan["meets_sla"] else "-",
    }


def serving_rows(run: RunResults) -> list[dict[str, str]]:
    """Capacity measured by `bakeoff loadtest` beside the estimate for the same hardware: the capacity rule over
    the trial's in-process batch timings (CPU), or over the GPU estimate (a catalog GPU)."""
    from bakeoff.decision.measured import (
        answered,
        estimated_capacity,
        estimated_capacity_here,
        is_lower_bound,
        measured_capacity,
    )

    by_id = {t.trial_id: t for t in run.done_trials}
    estimates = {(e["model"], e["hardware"]["key"]): e for e in (run.run.analysis or {}).get("gpu_estimates", [])}
    out = []
    for candidate, entry in sorted((run.run.serving or {}).items()):
        measured = measured_capacity(entry)
        trial = by_id.get(entry.get("trial_id"))
        hardware, sla = entry.get("hardware") or "?", entry["sla_p95_ms"]
        estimate = None
        if trial is not None and hardware == "cpu":
            estimate = estimated_capacity_here(trial.timings.items_per_s_by_batch, sla)
        elif trial is not None and (trial.model_name or candidate, hardware) in estimates:
            record = estimates[(trial.model_name or candidate, hardware)]
            estimate = estimated_capacity(record["inference"]["latency_ms_by_batch"], sla)
        batching = entry.get("batching") or {}
        lower_bound = is_lower_bound(measured, entry)
        if not answered(entry):
            shown = "no request answered"
        elif measured is None:
            shown = "none met it"
        else:  # every rate tried met the SLA: the capacity is at least the top one
            shown = f"{'>= ' if lower_bound else ''}{measured.items_per_s:.1f}"
        out.append(
            {
                "candidate": candidate,
                "trial": entry.get("trial_id") or "?",
                "hardware": hardware,
                "server": f"batch <= {batching.get('max_batch', '?')}, wait {batching.get('max_wait_ms', '?')} ms",
                "SLA p95 ms": f"{sla:g}",
                "measured items/s within SLA": shown,
                "p95 ms there": "-" if measured is None else f"{measured.latency_ms_p95:.0f}",
                "estimated items/s": ("-" if trial is None else "none meets it")
                if estimate is None
                else f"{estimate:.1f}",
                "measured / estimated": f"{'>= ' if lower_bound else ''}x{measured.items_per_s / estimate:.2f}"
                if measured is not None and estimate
                else "-",
                "measured at": entry.get("measured_at", "")[:16],
            }
        )
    return out


def gpu_estimate_rows(analysis: dict | None) -> list[dict[str, str]]:
    return [estimate_row(record) for record in (analysis or {}).get("gpu_estimates", [])]


def appetite_lines(analysis: dict | None) -> list[str]:
    lines = []
    for name, report in sorted((analysis or {}).get("learning_curves", {}).items()):
        curve = ", ".join(f"{r['train_size']}: {100 * r['quality']:.1f}" for r in report["curve"])
        share = report["to_share_of_best"]
        if share["examples"]:
            needed = f"{100 * share['share']:.0f}% of its best needs {share['examples']} examples ({share['how']})"
        else:  # trained at one size only: its best is that size
            needed = share["how"]
        label = tasks.metric_label(report.get("metric", "macro_f1"))
        line = f"{name}: {label} by size {curve}; {needed}"
        if "to_target" in report:
            target = report["to_target"]
            line += f"; macro-F1 {100 * target['target']:.0f}% needs " + (
                f"{target['examples']} ({target['how']})" if target["examples"] else target["how"]
            )
        lines.append(line + ".")
    return lines


def comparison_lines(analysis: dict | None, limit: int = 12) -> list[str]:
    lines = []
    for c in (analysis or {}).get("paired_comparisons", [])[:limit]:
        main = c.get("main_metric", "macro_f1")
        low, high = c[main]["ci"]
        verdict = (
            "tie (CI includes 0)"
            if c["tie"]
            else (f"{c['a']} better" if c[main]["difference"] > 0 else f"{c['b']} better")
        )
        test = f", McNemar p={c['mcnemar']['p_value']:.3g}" if "mcnemar" in c else ""
        lines.append(
            f"n={c['train_size']} seed {c['seed']}: {c['a']} - {c['b']} {tasks.metric_label(main)} "
            f"{100 * c[main]['difference']:+.1f} pts "
            f"[{100 * low:+.1f}, {100 * high:+.1f}]{test}: {verdict}"
        )
    return lines


def _markdown_table(table_rows: list[dict[str, str]]) -> list[str]:
    if not table_rows:
        return []
    header = list(table_rows[0])
    return (
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(_cell(value) for value in r.values()) + " |" for r in table_rows]
        + [""]
    )


def _cell(value: str) -> str:
    """One table cell: a `|` or a line break inside (a trial's error message) would end the cell or the row."""
    return " ".join(str(value).split()).replace("|", "\\|")


def best_per_size(run: RunResults) -> list[str]:
    """Plain sentences: the best test macro-F1 (the task's main metric) at each training size (seed means)."""
    main = tasks.main_metric(run.run.task_type)
    label = tasks.metric_label(main)
    by_size: dict[int, dict[str, list[float]]] = {}
    for trial in run.done_trials:
        by_size.setdefault(trial.train_size, {}).setdefault(trial.candidate, []).append(
            getattr(trial.metrics.test, main).value
        )
    lines = []
    for size in sorted(by_size):
        means = {c: sum(v) / len(v) for c, v in by_size[size].items()}
        best = max(means, key=means.get)
        what = "zero-shot" if size == 0 else f"{size} training examples"
        lines.append(f"With {what}: best test {label} is {best} ({100 * means[best]:.1f}%).")
    return lines


def markdown(run_name: str, run: RunResults, recommendation: dict | None = None) -> str:
    meta = run.run
    lines = [f"# bakeoff run: {run_name}", ""]
    if recommendation:
        lines += ["## Recommendation", "", recommendation["rationale"], ""]
    if cost_rows(recommendation):
        lines += ["## Cost per month, errors included", ""] + _markdown_table(cost_rows(recommendation))
        lines += [f"- {line}" for line in cost_lines(recommendation)] + [""]
    report = meta.data_report or {}
    if report:
        lines += [
            f"Data: {report['labels']} labels; train pool {report['train_examples']}, validation "
            f"{report['validation_examples']}, "
            f"test {report['test_examples']}; {report['test_exact_in_train']} test items duplicated in train, "
            f"{report['test_near_duplicates_of_train']} near-duplicates; {report['empty_texts_dropped']} empty texts "
            "dropped.",
            "",
        ]
    lines += [
        f"Device: {meta.device}; bakeoff {meta.versions.get('bakeoff')}, git {meta.git_sha or 'n/a'}.",
        "",
    ]
    kind = meta.task_type
    if kind != "classification":
        return _task_markdown(lines, kind, run)
    lines += ["## Quality", ""] + _markdown_table(rows(run.trials))
    lines += [f"- {line}" for line in best_per_size(run)]
    evaluation = _evaluation_settings(meta)
    lines += [
        "",
        f"Accuracy and macro-F1 are percentages on the held-out test set, with percentile-bootstrap "
        f"{100 * evaluation.confidence:g}% intervals; `train acc` is on (up to {evaluation.max_train_items} of) "
        "the examples "
        "the candidate was trained on: a large train/test gap is memorization.",
        "",
    ]
    lines += ["## Generalization, out-of-scope items, calibration", ""] + _markdown_table(robustness_rows(run.trials))
    lines += [
        "`clean test acc`: test items that are neither exact nor near duplicates of training items. `perturbed "
        "acc`: mean over "
        "perturbations of the test subset (worst in brackets). `paraphrase acc`: built-in tickets in phrasings "
        "never used in "
        "training. `OOS AUROC`: out-of-scope detection from max probability. `conf. wrong`: out-of-scope items "
        "given a label "
        "with p >= 0.9. `abstain`: share of test + out-of-scope items refused at the validation-chosen "
        "threshold. `ECE`: expected "
        f"calibration error ({evaluation.calibration_bins} bins) before and after temperature scaling. "
        "`memorized?`: near-perfect on training items, "
        "materially worse on perturbed held-out ones.",
        "",
    ]
    return _shared_sections(lines, run)


def _task_markdown(lines: list[str], kind: str, run: RunResults) -> str:
    """summary.md for an extraction or generation run: the task's own tables, then the shared sections."""
    analysis = run.run.analysis
    evaluation = _evaluation_settings(run.run)
    lines += [f"## Quality ({kind})", ""] + _markdown_table(task_tables.quality_rows(run.trials, kind, analysis))
    lines += [f"- {line}" for line in best_per_size(run)]
    lines += ["", task_tables.QUALITY_NOTES[kind], ""]
    lines += [f"Intervals: percentile bootstrap over test items at {100 * evaluation.confidence:g}%.", ""]
    if task_tables.judge_lines(analysis):
        lines += ["## LLM judge (pairwise, position-swapped)", ""]
        lines += [f"- {line}" for line in task_tables.judge_lines(analysis)] + [""]
    label = tasks.metric_label(tasks.main_metric(kind))
    lines += ["## Generalization and out-of-scope items", ""]
    lines += _markdown_table(task_tables.robustness_rows(run.trials, kind))
    lines += [task_tables.ROBUSTNESS_NOTE.format(label=label), ""]
    lines += [f"- {line}" for line in task_tables.not_applicable_lines(run.trials)]
    lines += [""] if task_tables.not_applicable_lines(run.trials) else []
    return _shared_sections(lines, run)


def _shared_sections(lines: list[str], run: RunResults) -> str:
    """The sections every task type shares: speed, GPU estimates, capacity, data appetite, paired comparisons."""
    analysis = run.run.analysis
    if efficiency_rows(run.trials):
        lines += ["## Speed and memory, measured here (and the estimator's view of it)", ""] + _markdown_table(
            efficiency_rows(run.trials)
        )
        lines += [
            "Measured on this run's hardware; `est` is bakeoff's estimate for the same hardware from the "
            "architecture alone "
            "(x = measured / estimated). Latency: one item at a time, after warm-up.",
            "",
        ]
    if gpu_estimate_rows(analysis):
        spec_eff = (run.run.spec or {}).get("efficiency", {})
        lines += ["## Estimated on GPUs (not measured)", ""] + _markdown_table(gpu_estimate_rows(analysis))
        lines += [
            f"Estimates for {spec_eff.get('method', 'lora')} fine-tuning and label-scoring inference, serving "
            f"{spec_eff.get('load_items_per_s')} items/s at p95 <= {spec_eff.get('sla_p95_ms')} ms; formulas and "
            "assumptions "
            "in `bakeoff/efficiency/estimate.py`, prices indicative (2026-11).",
            "",
        ]
    if serving_rows(run):
        lines += ["## Capacity under load: measured (HTTP load test) and estimated", ""] + _markdown_table(
            serving_rows(run)
        )
        lines += [
            "Measured: `bakeoff loadtest` against `bakeoff serve`, open-loop Poisson arrivals; the highest rate "
            "whose p95 met "
            "the SLA with no errors. Estimated: the capacity plan's rule (p95 <= 2 x batch service time, 70% "
            "utilisation) "
            "on the same hardware. Where a measurement exists for the hardware decided on, the recommendation "
            "uses it.",
            "",
        ]
    if appetite_lines(analysis):
        lines += ["## Data appetite", ""] + [f"- {line}" for line in appetite_lines(analysis)] + [""]
    if comparison_lines(analysis, limit=100):
        lines += (
            ["## Paired comparisons (same test items)", ""]
            + [f"- {line}" for line in comparison_lines(analysis, limit=100)]
            + [""]
        )
    return "\n".join(lines) + "\n"


def _evaluation_settings(meta: RunMeta):
    """The run's evaluation settings, defaults filled in (run folders from before a setting existed)."""
    from bakeoff.config import EvaluationSpec  # pydantic only: no torch

    return EvaluationSpec.model_validate((meta.spec or {}).get("evaluation") or {})


def results_json(meta: dict, trials: list[dict], recommendation: dict | None) -> str:
    """results.json's text, in the store's shape (the store's run table and trial rows, as they are stored):
    `RunResults.from_stored` reads it back."""
    return json.dumps({"schema": SCHEMA, "run": meta, "trials": trials, "recommendation": recommendation}, indent=1)
