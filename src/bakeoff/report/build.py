"""Rebuild everything a run folder presents from its store: analysis, recommendation, summary.md,
results.json and report.html. No torch: `bakeoff report RUN_DIR` works on any laptop."""

from __future__ import annotations

from pathlib import Path

from bakeoff.decision.engine import recommend, with_answers
from bakeoff.errors import BakeoffError
from bakeoff.evaluation.analysis import analyse
from bakeoff.report.html import write_report
from bakeoff.report.summary import write_summary
from bakeoff.store import ResultStore


def load_results(run_dir: Path, refresh_analysis: bool = True) -> dict:
    """results.json's content, from the store (recomputing the cross-trial analysis if asked)."""
    database = Path(run_dir) / "results.sqlite"
    if not database.is_file():
        raise BakeoffError(f"{run_dir} is not a bakeoff run folder (no results.sqlite)")
    store = ResultStore(database)
    try:
        meta, trials = store.metadata(), store.trials()
        if refresh_analysis and meta.get("spec"):
            meta["analysis"] = analyse(trials, Path(run_dir), meta["spec"])
            store.set_meta("analysis", meta["analysis"])
    finally:
        store.close()
    return {"schema": "bakeoff.results/1", "run": meta, "trials": trials}


def build(run_dir: Path, answers: dict | None = None) -> tuple[dict, dict | None, list[Path]]:
    """Write summary.md, results.json and report.html; returns (results, recommendation, paths)."""
    results = load_results(run_dir)
    if answers:
        results = with_answers(results, answers)
    has_trials = any(t["status"] == "done" for t in results["trials"])
    recommendation = recommend(results) if has_trials else None
    results["recommendation"] = recommendation
    name = (results["run"].get("spec") or {}).get("name", Path(run_dir).name)
    md, js = write_summary(Path(run_dir), name, results["run"], results["trials"], recommendation)
    html = write_report(Path(run_dir), results, recommendation)
    return results, recommendation, [md, js, html]
