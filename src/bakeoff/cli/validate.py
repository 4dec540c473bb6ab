"""`bakeoff validate CONFIG`: check a config, its data and its model sources without loading any model.

It runs the same preflight as `bakeoff run`, so what `validate` accepts, `run` does not refuse."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.config import load_spec
from bakeoff.run_folder import RunFolder


@user_errors
def validate_command(
    config: Path = typer.Argument(..., help="YAML run config."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, as for `bakeoff run`."),
    check_data: bool = typer.Option(True, help="Also load and validate the task data."),
    explain: bool = typer.Option(
        False, "--explain", help="Print the resolved config, every setting with its description."
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Hub ids from the local cache only, no network (same as HF_HUB_OFFLINE=1)."
    ),
) -> None:
    """Resolve the config (and data, and model sources) and print what would run."""
    from bakeoff.models.sources import go_offline, resolve_source
    from bakeoff.runners.grid import expand_grid
    from bakeoff.runners.preflight import preflight

    if offline:
        go_offline()
    spec = load_spec(config, overrides or [])
    task = preflight(spec, check_data=check_data)
    for candidate in spec.candidates:
        if candidate.is_baseline:
            console.print(f"candidate {escape(candidate.name)}: classical baseline")
        else:
            source = resolve_source(candidate.model, candidate.gguf_file, candidate.revision)
            console.print(
                f"candidate {escape(candidate.name)}: {candidate.resolved_method}, {escape(source.description)}"
            )
    if task is not None:
        for warning in task.report.warnings:
            console.print(f"[yellow]data: {escape(warning)}[/yellow]")
        console.print(f"data: {escape(str(task.report.as_dict()))}")
    trials = expand_grid(spec)
    folder = RunFolder(spec.run_dir)
    if task is not None and folder.has_store():  # what `run` would refuse on resuming
        store = folder.open_store()
        try:
            store.refuse_another_run(spec.run_dir, spec.fingerprint(), task.fingerprint())
        finally:
            store.close()
    if explain:
        from bakeoff.config import explain as explained

        stdout.print("\n".join(explained(spec)), markup=False, highlight=False, soft_wrap=True)
    stdout.print(
        f"ok: {spec.name}, {len(trials)} trials, fingerprint {spec.fingerprint()}, output {spec.run_dir}", markup=False
    )
    raise typer.Exit(0)
