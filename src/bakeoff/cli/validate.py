"""`bakeoff validate CONFIG`: check a config, its data and its model sources without loading any model."""

from __future__ import annotations

from pathlib import Path

import typer

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.config import load_spec


@user_errors
def validate_command(
    config: Path = typer.Argument(..., help="YAML run config."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, as for `bakeoff run`."),
    check_data: bool = typer.Option(True, help="Also load and validate the task data."),
) -> None:
    """Resolve the config (and data, and model sources) and print what would run."""
    from bakeoff.data.splits import nested_subsets
    from bakeoff.data.task import prepare_task
    from bakeoff.models.sources import resolve_source
    from bakeoff.runners.grid import expand_grid

    spec = load_spec(config, overrides or [])
    for candidate in spec.candidates:
        if not candidate.is_baseline:
            source = resolve_source(candidate.model, candidate.gguf_file)
            console.print(f"candidate {candidate.name}: {candidate.resolved_method}, {source.description}")
        else:
            console.print(f"candidate {candidate.name}: classical baseline")
    if check_data:
        task = prepare_task(spec.task)
        for seed in spec.grid.seeds:
            nested_subsets(task.train_pool.labels, spec.grid.train_sizes, seed)
        console.print(f"data: {task.report.as_dict()}")
    trials = expand_grid(spec)
    stdout.print(f"ok: {spec.name}, {len(trials)} trials, fingerprint {spec.fingerprint()}, output {spec.run_dir}")
    raise typer.Exit(0)
