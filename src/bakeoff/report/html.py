"""report.html: one self-contained file (inline CSS and SVG, no network), a pure function of results.json.

The recommendation and its rationale come first, then the evidence a reader would check: candidates
with CIs, learning curves, robustness, out-of-scope behaviour, calibration, confusion matrices,
latency and throughput, cost and capacity, architectures, and the run's metadata. Jinja2 autoescapes
every value, and the SVG helpers escape their labels, so dataset text (labels, names) renders as text.
"""

from __future__ import annotations

import json
from importlib.resources import files

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from bakeoff import tasks
from bakeoff.report import summary, task_tables
from bakeoff.report.cost_tables import cost_chart, cost_lines, cost_rows
from bakeoff.report.svg import bar_chart, interval_chart, line_chart
from bakeoff.results import RunResults, TrialRecord


def _largest_trials(run: RunResults) -> list[TrialRecord]:
    """Per candidate, its finished trial at the largest training size (seed 0 first)."""
    best: dict[str, TrialRecord] = {}
    for trial in run.done_trials:
        current = best.get(trial.candidate)
        if current is None or (trial.train_size, -trial.seed) > (current.train_size, -current.seed):
            best[trial.candidate] = trial
    return list(best.values())


def _charts(run: RunResults, recommendation: dict | None = None) -> dict[str, Markup]:
    analysis = run.run.analysis or {}
    top = _largest_trials(run)
    curves = {
        name: [(r["train_size"], r["quality"]) for r in report["curve"]]
        for name, report in analysis.get("learning_curves", {}).items()
    }
    kind = run.run.task_type
    main = tasks.main_metric(kind)
    label = tasks.metric_label(main)
    charts = {}
    if curves:
        charts["learning"] = line_chart(curves, "training examples", f"test {label}")
    bars = []
    robust_key = "accuracy" if kind == "classification" else main
    for trial in top:
        robustness = trial.metrics.robustness or {}
        for name, p in (robustness.get("perturbations") or {}).items():
            bars.append((f"{trial.candidate} / {name}", p[robust_key]))
        if robustness.get("paraphrase"):
            bars.append((f"{trial.candidate} / paraphrase", robustness["paraphrase"][robust_key]))
    if bars:
        charts["robustness"] = bar_chart(bars, f"{robust_key} on perturbed items (largest training size)")
    if kind != "classification":
        charts |= _task_charts(top, kind, analysis)
    roc, risk, reliability = {}, {}, {}
    for trial in top:
        metrics = trial.metrics
        oos = metrics.out_of_scope or {}
        curve = ((oos.get("by_score") or {}).get("max_prob") or {}).get("roc")
        if curve:
            roc[trial.candidate] = list(zip(curve["fpr"], curve["tpr"]))
        if oos.get("risk_coverage"):
            risk[trial.candidate] = list(zip(oos["risk_coverage"]["coverage"], oos["risk_coverage"]["risk"]))
        bins = (metrics.calibration or {}).get("reliability") or []
        points = [(b["confidence"], b["accuracy"]) for b in bins if b.get("count")]
        if points:
            reliability[trial.candidate] = points
    if roc:
        charts["roc"] = line_chart(
            roc, "out-of-scope accepted (FPR)", "in-scope accepted (TPR)", x_range=(0, 1), diagonal=True
        )
    if risk:
        charts["risk"] = line_chart(risk, "coverage (most confident first)", "error rate", x_range=(0, 1))
    if reliability:
        charts["reliability"] = line_chart(reliability, "confidence", "accuracy", x_range=(0, 1), diagonal=True)
    latency = [
        (f"{t.candidate} (n={t.train_size})", t.timings.latency_ms_p95)
        for t in run.done_trials
        if t.timings is not None and t.timings.latency_ms_p95
    ]
    if latency:
        charts["latency"] = bar_chart(
            latency, "batch-1 latency p95, ms (measured here)", x_max=max(v for _, v in latency) * 1.15
        )
    if (costs := cost_chart(recommendation)) is not None:
        charts["costs"] = costs
    return {name: Markup(svg) for name, svg in charts.items()}  # built from escaped parts by report.svg


def _task_charts(top: list[TrialRecord], kind: str, analysis: dict) -> dict[str, str]:
    """Extraction / generation: the main metrics with their intervals, per-field F1, judge win-rates."""
    charts = {}
    keys = ("record_exact_match", "field_f1", "valid_output_rate") if kind == "extraction" else ("chrf", "rouge_l")
    bars = []
    for trial in top:
        test = trial.metrics.test
        for key in keys:
            stat = getattr(test, key) if test is not None else None
            if stat is not None:
                bars.append((f"{trial.candidate} / {key}", stat.value, stat.ci_low, stat.ci_high))
    if bars:
        charts["task_quality"] = interval_chart(bars, "test set, largest training size (95% CI whiskers)")
    fields = [
        (f"{trial.candidate} / {field}", scores["f1"])
        for trial in top
        for field, scores in ((trial.metrics.test.per_field if trial.metrics.test else None) or {}).items()
    ]
    if fields:
        charts["fields"] = bar_chart(fields, "F1 per field (test, largest training size)")
    judged = [
        (f"{r['candidate']} (n={r['train_size']}, seed {r['seed']})", r["win_rate"], *r["win_rate_ci"])
        for r in ((analysis.get("judge") or {}).get("records") or [])
    ]
    if judged:
        charts["judge"] = interval_chart(
            judged, f"judge win-rate against {analysis['judge']['baseline']} (0.5 = as good)"
        )
    fallback = [
        (trial.candidate, oos["fallback_detection_rate"])
        for trial in top
        if (oos := trial.metrics.out_of_scope or {}).get("fallback_detection_rate") is not None
    ]
    if fallback:
        charts["fallback"] = bar_chart(fallback, "out-of-scope outputs that fall back (largest training size)")
    return charts


def _confusions(run: RunResults) -> list[dict]:
    labels = run.run.labels
    out = []
    for trial in _largest_trials(run):
        matrix = trial.metrics.test.confusion if trial.metrics.test else None
        if matrix and len(matrix) == len(labels):
            peak = max(max(row) for row in matrix) or 1
            out.append(
                {
                    "candidate": trial.candidate,
                    "size": trial.train_size,
                    "labels": labels,
                    "rows": [[(v, round(0.85 * v / peak, 2)) for v in row] for row in matrix],
                }
            )
    return out


def _architectures(trials: list[TrialRecord]) -> list[dict]:
    seen = {}
    for trial in trials:
        model = trial.model or {}
        if model.get("kind") == "llm" and "architecture" in model:
            seen.setdefault(trial.model_name or trial.candidate, model["architecture"])
    keys = (
        "model_type",
        "is_moe",
        "num_experts",
        "experts_per_token",
        "params_total",
        "params_active",
        "params_embedding",
        "params_attention",
        "params_mlp",
        "params_lm_head",
        "tied_embeddings",
        "num_layers",
        "hidden_size",
        "num_heads",
        "num_kv_heads",
        "head_dim",
        "sliding_window",
        "vocab_size",
        "context_length",
    )
    return [{"model": name, "facts": [(k, arch.get(k)) for k in keys]} for name, arch in seen.items()]


def render(run: RunResults, recommendation: dict | None) -> str:
    env = Environment(
        autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True, lstrip_blocks=True
    )
    template = env.from_string(files("bakeoff.report").joinpath("templates/report.html.j2").read_text(encoding="utf-8"))
    meta, trials = run.run, run.trials
    analysis = meta.analysis or {}
    kind = meta.task_type
    classification = kind == "classification"
    quality_metric = ((recommendation or {}).get("evidence") or [{}])[0].get("quality_metric", "macro_f1")
    return template.render(
        task_type=kind,
        quality_label=tasks.metric_label(quality_metric),
        task_notes=None if classification else task_tables.QUALITY_NOTES[kind],
        judge=task_tables.judge_lines(analysis),
        run=meta,
        name=(meta.spec or {}).get("name", "run"),
        recommendation=recommendation,
        quality_rows=summary.rows(trials) if classification else task_tables.quality_rows(trials, kind, analysis),
        robustness_rows=summary.robustness_rows(trials)
        if classification
        else task_tables.robustness_rows(trials, kind),
        robustness_notes=task_tables.not_applicable_lines(trials),
        efficiency_rows=summary.efficiency_rows(trials),
        gpu_rows=summary.gpu_estimate_rows(analysis),
        serving_rows=summary.serving_rows(run),
        appetite=summary.appetite_lines(analysis),
        comparisons=summary.comparison_lines(analysis, limit=200),
        charts=_charts(run, recommendation),
        cost_rows=cost_rows(recommendation),
        cost_lines=cost_lines(recommendation),
        confusions=_confusions(run),
        architectures=_architectures(trials),
        spec_json=json.dumps(meta.spec, indent=1),
        versions=meta.versions,
        failed=[t for t in trials if t.status == "failed"],
    )
