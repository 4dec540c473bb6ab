"""`bakeoff run CONFIG [key=value ...]`: run (or resume) the comparison a YAML config describes."""

from __future__ import annotations

from pathlib import Path

import typer

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.config import RunSpec, load_spec


def execute(spec: RunSpec) -> None:
    """Run the grid, then write and print the summary. Shared by `run` and `demo`."""
    from bakeoff.report.summary import appetite_lines, comparison_lines, robustness_table, terminal_table, write_summary
    from bakeoff.runners.local import run_spec

    from bakeoff.evaluation.analysis import analyse

    outcome = run_spec(spec, console)
    trials = outcome.store.trials()
    outcome.store.set_meta("analysis", analyse(trials, outcome.run_dir, spec.model_dump(mode="json")))
    meta = outcome.store.metadata()
    md_path, json_path = write_summary(outcome.run_dir, spec.name, meta, trials)
    stdout.print(terminal_table(f"bakeoff: {spec.name}", trials))
    stdout.print(robustness_table(trials))
    for line in appetite_lines(meta.get("analysis")):
        stdout.print(f"data appetite: {line}")
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
