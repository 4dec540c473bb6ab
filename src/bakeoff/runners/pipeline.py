"""A run from its spec to its recommendation: what `bakeoff.run(spec)` does, and so `bakeoff run`, `bakeoff demo`
and a notebook alike (the CLI only parses the config before and prints the results after).

    preflight -> the run folder's lock -> the trial grid (in this process, or as Ray tasks) -> the cross-trial
    analysis, with the LLM judge, computed once and stored -> summary.md, results.json, report.html and the
    recommendation -> MLflow

It sits with the runners, on top of every stage it calls. The analysis is stored before anything reads it, so
the report, `bakeoff.load_run`, `recommend` and the MLflow export all decide from the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bakeoff.config import RunSpec
from bakeoff.errors import BakeoffError
from bakeoff.results import RunResults


@dataclass(frozen=True)
class Outcome:
    """What one call did: trials run now, skipped (done by an earlier call), failed now; the files it wrote."""

    ran: int
    skipped: int
    failed: int
    outputs: tuple[Path, ...]  # summary.md, results.json, report.html


@dataclass(frozen=True)
class Finished:
    run_dir: Path
    results: RunResults  # with the recommendation for the run's own decision answers (None before any trial)
    outcome: Outcome


def run_pipeline(spec: RunSpec, console: Console) -> Finished:
    """Run (or resume) `spec`'s trials, store their analysis, write the report files, decide, and log to MLflow
    (with `tracking.mlflow`). One driver per run folder: a second one is refused."""
    from bakeoff.report.build import build
    from bakeoff.run_analysis import analyse_run
    from bakeoff.runners.lock import run_folder_lock
    from bakeoff.runners.preflight import preflight
    from bakeoff.tracking.live import track_run_end

    if spec.runner.kind == "ray":
        from bakeoff.runners.ray_runner import run_spec_on_ray as run_grid  # imports ray only now
    else:
        from bakeoff.runners.local import run_spec as run_grid

    # Preflight first, so `run` refuses exactly what `validate` refuses, with the same message.
    task = preflight(spec, create_run_dir=True)
    with run_folder_lock(spec.run_dir):
        grid = run_grid(spec, console, task)
        try:
            spec_json = spec.model_dump(mode="json")
            # The decision and GPU-estimate sections may differ from the first run's (they do not change trials).
            grid.store.set_meta("spec", spec_json)
            trials = grid.store.trials()
            judge, judge_note = run_judge(spec, trials, grid.run_dir)
            grid.store.set_meta("analysis", analyse_run(trials, grid.run_dir, spec_json, judge, judge_note))
            results, _, paths = build(grid.run_dir)  # reads the analysis just stored, as every reader does
            track_run_end(spec, grid.run_dir, console)  # the report files and the recommendation, with tracking.mlflow
        finally:  # closed here, not whenever the garbage collector gets to it (closing checkpoints the WAL)
            grid.store.close()
    return Finished(grid.run_dir, results, Outcome(grid.ran, grid.skipped, grid.failed, tuple(paths)))


def run_judge(spec: RunSpec, trials: list[dict], run_dir: Path) -> tuple:
    """`(judge, note)` for `evaluation.judge`: the OpenAI-compatible endpoint, or the local candidate's finished
    trial loaded for judging; `(None, why)` when there is none or it cannot be built (the run still ends, and
    the analysis says so); `(None, None)` without `evaluation.judge`."""
    settings = spec.evaluation.judge
    if settings is None:
        return None, None
    from bakeoff.evaluation.judge import judge_from_spec

    if settings.endpoint is not None:
        return judge_from_spec(settings), f"{settings.model} at {settings.endpoint}"
    from bakeoff.evaluation.local_judge import candidate_judge

    try:
        judge, trial_id = candidate_judge(spec, trials, run_dir)
    except BakeoffError as err:  # the judge's own model failed to load: the trials' analysis is still stored
        return None, f"the local judge could not be loaded: {err}"
    return judge, f"candidate `{settings.candidate}` (trial {trial_id})"
