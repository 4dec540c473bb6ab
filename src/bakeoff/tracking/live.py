"""Logging to MLflow while a run goes (`tracking: {mlflow: {uri, experiment}}` in the spec).

Runners call three functions, each a no-op without a `tracking` section:
- `check_tracking(spec)` in preflight: a missing extra or an unreachable URI fails in seconds, before
  any training (exit 2, one line);
- `track_trial(spec, run_dir, console)` after each trial is stored: the export of the store so far
  (idempotent, so each call adds the new trial and touches nothing unchanged);
- `track_run_end(spec, run_dir, console)` after the report is written: the report files and the
  recommendation, and the parent run marked finished.
A tracking server that goes away mid-run costs a warning, never the run: the results are in the store,
and `bakeoff export mlflow RUN_DIR` sends them later.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bakeoff.config import RunSpec
from bakeoff.errors import BakeoffError


def debug_enabled() -> bool:
    return os.environ.get("BAKEOFF_DEBUG") == "1"


@functools.lru_cache(maxsize=4)
def _client(uri: str | None):
    from bakeoff.tracking.mlflow_export import connect

    return connect(uri)


def check_tracking(spec: RunSpec) -> None:
    if spec.tracking.mlflow is not None:
        _client(spec.tracking.mlflow.uri)


def _export(spec: RunSpec, run_dir: Path, console: Console, final: bool) -> None:
    settings = spec.tracking.mlflow
    if settings is None:
        return
    from bakeoff.tracking.mlflow_export import export_run

    try:
        export_run(run_dir, settings.uri, settings.experiment or spec.name, final=final, client=_client(settings.uri))
    except Exception as err:  # hours of training must not end on a tracking problem: the store has it all
        if debug_enabled():
            raise
        reason = str(err) if isinstance(err, BakeoffError) else f"{type(err).__name__}: {err}"
        console.print(
            f"[yellow]MLflow logging skipped ({escape(reason)}); the run goes on, and `bakeoff export mlflow "
            f"{run_dir}` "
            "sends the results later[/yellow]",
            highlight=False,
        )


def track_trial(spec: RunSpec, run_dir: Path, console: Console) -> None:
    _export(spec, run_dir, console, final=False)


def track_run_end(spec: RunSpec, run_dir: Path, console: Console) -> None:
    _export(spec, run_dir, console, final=True)
