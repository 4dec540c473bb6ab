"""`bakeoff run CONFIG [key=value ...]`: run (or resume) the comparison a YAML config describes."""

from __future__ import annotations

from pathlib import Path

import typer

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.config import RunSpec, load_spec


def execute(spec: RunSpec) -> None:
    """Run the grid, then write and print the summary. Shared by `run` and `demo`."""
    from bakeoff.report.summary import terminal_table, write_summary
    from bakeoff.runners.local import run_spec

    outcome = run_spec(spec, console)
    meta = outcome.store.metadata()
    trials = outcome.store.trials()
    md_path, json_path = write_summary(outcome.run_dir, spec.name, meta, trials)
    stdout.print(terminal_table(f"bakeoff: {spec.name}", trials))
    console.print(
        f"{outcome.ran} trials run, {outcome.skipped} already done (skipped), {outcome.failed} failed. "
        f"Summary: {md_path}  Results: {json_path}"
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
