"""`bakeoff run CONFIG [key=value ...]`: run (or resume) the comparison a YAML config describes."""

from __future__ import annotations

from pathlib import Path

import typer

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.config import RunSpec, load_spec


def execute(spec: RunSpec) -> None:
    """Run the grid, then write the summary, results and report, and print the recommendation.
    Shared by `run` and `demo`."""
    from bakeoff.report.build import build
    from bakeoff.report.summary import appetite_lines, robustness_table, terminal_table
    from bakeoff.runners.local import run_spec
    from bakeoff.tracking.live import track_run_end

    outcome = run_spec(spec, console)
    # The decision and GPU-estimate sections may differ from the first run's (they do not change trials).
    outcome.store.set_meta("spec", spec.model_dump(mode="json"))
    results, recommendation, paths = build(outcome.run_dir)
    track_run_end(spec, outcome.run_dir, console)  # report files and recommendation to MLflow, when `tracking.mlflow` is set
    trials = results["trials"]
    stdout.print(terminal_table(f"bakeoff: {spec.name}", trials))
    stdout.print(robustness_table(trials))
    for line in appetite_lines(results["run"].get("analysis")):
        stdout.print(f"data appetite: {line}")
    if recommendation:
        stdout.print(f"\n{recommendation['rationale']}", highlight=False)
    console.print(
        f"{outcome.ran} trials run, {outcome.skipped} already done (skipped), {outcome.failed} failed. "
        f"Report: {paths[2]}  Summary: {paths[0]}  Results: {paths[1]}"
    )
    if outcome.failed:
        raise typer.Exit(1)


@user_errors
def run_command(
    config: Path = typer.Argument(..., help="YAML run config (see configs/)."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. training.epochs=2 grid.train_sizes=[50,100]."),
) -> None:
    """Fine-tune and evaluate every candidate in CONFIG; re-running resumes where it stopped."""
    execute(load_spec(config, overrides or []))
