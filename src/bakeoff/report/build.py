"""Rebuild everything a run folder presents from its store: recommendation, summary.md, results.json and
report.html. A pure reader: it never writes to the store, and no torch, so `bakeoff report RUN_DIR`
works on any laptop. The cross-trial analysis is read as the run stored it (`run_analysis.stored_analysis`),
as `bakeoff.load_run` and the MLflow export read it (`read_results`): one recommendation everywhere.

It never destroys evidence either. An empty or damaged store is refused before anything is written (a
report of nothing once overwrote a 24 KB results.json with 86 bytes), and the three outputs are rendered
in memory first, then written to temporary files and renamed only once all of them exist.
"""

from __future__ import annotations

import os
from pathlib import Path

from bakeoff.decision.costs import read_item_scores
from bakeoff.decision.engine import recommend, with_answers
from bakeoff.errors import BakeoffError
from bakeoff.report.html import render
from bakeoff.report.summary import SCHEMA, markdown, results_json
from bakeoff.results import Recommendation, RunResults
from bakeoff.run_folder import OUTPUTS, PARTIAL, REPORT_HTML, RESULTS_JSON, SUMMARY_MD, RunFolder


def load_results(run_dir: Path, analysed: bool = True) -> dict:
    """results.json's content, read from the store; refuses a folder with no store or no trials. With
    `analysed`, `run.analysis` is the stored one (computed in memory only for a store that has none or an
    outdated one); without, it is left as stored (None before the run's end: enough for what does not decide)."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    store = folder.open_store()
    try:
        meta, trials = store.metadata(), store.trials()
    finally:
        store.close()
    if not trials or not meta.get("spec"):
        raise BakeoffError(
            f"the results store {folder.store} holds no trials: nothing to report, and the existing "
            f"{', '.join(OUTPUTS)} were left as they are. Run `bakeoff run CONFIG` to (re)compute the trials."
        )
    if analysed:
        from bakeoff.run_analysis import stored_analysis  # its modules load only when a report reads a run

        meta["analysis"] = stored_analysis(meta, trials, run_dir)
    return {"schema": SCHEMA, "run": meta, "trials": trials}


def decided(stored: dict, run_dir: Path, answers: dict | None = None) -> tuple[RunResults, dict | None]:
    """The typed results of `load_results` with the recommendation for the run's own answers (or `answers`),
    and that recommendation as the engine returned it; None before any trial finished."""
    run = RunResults.from_stored(stored)
    if answers:
        run = with_answers(run, answers)
    if not run.done_trials:
        return run, None
    costed = ((run.run.spec or {}).get("decision") or {}).get("costs") is not None
    items = read_item_scores(Path(run_dir), run) if costed else None  # `decision.costs` prices every stored item
    recommendation = recommend(run, items)
    return run.model_copy(update={"recommendation": Recommendation.model_validate(recommendation)}), recommendation


def read_results(run_dir: Path, decide: bool = True) -> RunResults:
    """A run folder's typed results, with the recommendation (`decide`) as `build` makes it; writes nothing.
    What `bakeoff.load_run` and the MLflow export read; without `decide`, no analysis is computed."""
    stored = load_results(Path(run_dir), analysed=decide)
    return decided(stored, run_dir)[0] if decide else RunResults.from_stored(stored)


def build(
    run_dir: Path, answers: dict | None = None, out_dir: Path | None = None
) -> tuple[RunResults, dict | None, list[Path]]:
    """Write summary.md, results.json and report.html (into `out_dir`, default the run folder); returns (the
    typed results, recommendation, paths)."""
    run_dir = Path(run_dir)
    stored = load_results(run_dir)
    run, recommendation = decided(stored, run_dir, answers)
    texts = {
        SUMMARY_MD: markdown(run.name or run_dir.name, run, recommendation),
        RESULTS_JSON: results_json(stored["run"] | {"spec": run.run.spec}, stored["trials"], recommendation),
        REPORT_HTML: render(run, recommendation),
    }
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    return run, recommendation, write_all(Path(out_dir) if out_dir is not None else run_dir, texts)


def write_all(run_dir: Path, texts: dict[str, str]) -> list[Path]:
    """Write every file to `<name>.partial`, then rename each over its target: a failure while writing
    leaves the previous outputs whole (a rename is atomic; the renames are the last step)."""
    partials = [run_dir / f"{name}{PARTIAL}" for name in texts]
    try:
        for partial, text in zip(partials, texts.values()):
            partial.write_text(text, encoding="utf-8")
    except OSError as err:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise BakeoffError(
            f"cannot write the outputs in {run_dir} ({err.strerror}); the previous ones are untouched"
        ) from None
    paths = []
    for partial in partials:
        target = partial.with_name(partial.name.removesuffix(PARTIAL))
        os.replace(partial, target)
        paths.append(target)
    return paths
