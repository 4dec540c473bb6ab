"""Render stored results: a terminal table, summary.md and results.json. Pure: no torch, no models.

results.json schema (`bakeoff.results/1`):
  run:     spec, versions, git_sha, device, created, labels, data_report (what the store's run table holds)
  trials:  one record per trial: trial_id, candidate, model_name, method, train_size, seed, status,
           error (failed only), metrics.test / metrics.train (accuracy, accuracy_ci, macro_f1,
           macro_f1_ci, per_class, confusion, items), timings (fine_tune_s, train_tokens_per_s,
           inference_items_per_s, peak_memory_mb, ...), training (loss history, steps, trainable_params)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.table import Table

SCHEMA = "bakeoff.results/1"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _with_ci(metric: dict | None, key: str) -> str:
    if not metric:
        return "-"
    low, high = metric[f"{key}_ci"]
    return f"{100 * metric[key]:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def rows(trials: list[dict]) -> list[dict[str, str]]:
    """One display row per trial, in run order."""
    out = []
    for trial in trials:
        result = trial.get("result") or {}
        metrics = result.get("metrics", {})
        timings = result.get("timings", {})
        out.append({
            "candidate": trial["candidate"],
            "method": trial["method"],
            "train n": str(trial["train_size"]) if trial["train_size"] else "0",
            "seed": str(trial["seed"]),
            "test acc % [95% CI]": _with_ci(metrics.get("test"), "accuracy"),
            "test macro-F1 % [95% CI]": _with_ci(metrics.get("test"), "macro_f1"),
            "train acc %": _pct(metrics["train"]["accuracy"]) if metrics.get("train") else "-",
            "fine-tune s": _number(timings.get("fine_tune_s")),
            "train tok/s": _number(timings.get("train_tokens_per_s"), 0),
            "infer items/s": _number(timings.get("inference_items_per_s")),
            "peak MB": _number(timings.get("peak_memory_mb"), 0),
            "status": trial["status"] if trial["status"] != "failed" else f"failed: {trial.get('error', '')}",
        })
    return out


TERMINAL_COLUMNS = {  # summary.md has every column; the terminal gets the ones that decide
    "candidate": "candidate", "method": "method", "train n": "n", "test acc % [95% CI]": "test acc % [95% CI]",
    "test macro-F1 % [95% CI]": "macro-F1 % [95% CI]", "train acc %": "train acc", "fine-tune s": "tune s",
    "infer items/s": "items/s", "peak MB": "peak MB",
}


def terminal_table(title: str, trials: list[dict]) -> Table:
    table = Table(title=title, show_lines=False, pad_edge=False)
    for header in TERMINAL_COLUMNS.values():
        table.add_column(header, justify="left" if header in ("candidate", "method") else "right", overflow="fold")
    for trial, row in zip(trials, rows(trials)):
        if trial["status"] != "done":
            table.add_row(row["candidate"], row["method"], row["train n"], f"[red]{row['status']}[/red]", *[""] * 5)
            continue
        table.add_row(*(row[key] for key in TERMINAL_COLUMNS))
    return table


def best_per_size(trials: list[dict]) -> list[str]:
    """Plain sentences: the best test macro-F1 at each training size (seed means)."""
    by_size: dict[int, dict[str, list[float]]] = {}
    for trial in trials:
        result = trial.get("result")
        if trial["status"] != "done" or not result:
            continue
        by_size.setdefault(trial["train_size"], {}).setdefault(trial["candidate"], []).append(result["metrics"]["test"]["macro_f1"])
    lines = []
    for size in sorted(by_size):
        means = {c: sum(v) / len(v) for c, v in by_size[size].items()}
        best = max(means, key=means.get)
        what = "zero-shot" if size == 0 else f"{size} training examples"
        lines.append(f"With {what}: best test macro-F1 is {best} ({100 * means[best]:.1f}%).")
    return lines


def markdown(run_name: str, meta: dict, trials: list[dict]) -> str:
    table_rows = rows(trials)
    lines = [f"# bakeoff run: {run_name}", ""]
    report = meta.get("data_report") or {}
    if report:
        lines += [
            f"Data: {report['labels']} labels; train pool {report['train_examples']}, validation {report['validation_examples']}, "
            f"test {report['test_examples']}; {report['test_exact_in_train']} test items duplicated in train, "
            f"{report['test_near_duplicates_of_train']} near-duplicates; {report['empty_texts_dropped']} empty texts dropped.",
            "",
        ]
    lines += [f"Device: {meta.get('device')}; bakeoff {meta.get('versions', {}).get('bakeoff')}, git {meta.get('git_sha') or 'n/a'}.", ""]
    if table_rows:
        header = list(table_rows[0])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row.values()) + " |" for row in table_rows]
        lines.append("")
    lines += [f"- {line}" for line in best_per_size(trials)]
    lines += ["", "Accuracy and macro-F1 are percentages on the held-out test set, with percentile-bootstrap 95% intervals; "
              "`train acc` is on (up to 200 of) the examples the candidate was trained on: a large train/test gap is memorization."]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_summary(run_dir: Path, run_name: str, meta: dict, trials: list[dict]) -> tuple[Path, Path]:
    """Write summary.md and results.json into the run folder; returns their paths."""
    run_dir = Path(run_dir)
    md_path, json_path = run_dir / "summary.md", run_dir / "results.json"
    _write_atomic(md_path, markdown(run_name, meta, trials))
    _write_atomic(json_path, json.dumps({"schema": SCHEMA, "run": meta, "trials": trials}, indent=1))
    return md_path, json_path
