"""`bakeoff export model RUN_DIR --candidate NAME --to DIR`: adapter, merged model, labels and prompt for GPU stacks."""

from __future__ import annotations

from pathlib import Path

import typer

from bakeoff.cli.common import console, stdout, user_errors


@user_errors
def export_model_command(
    run_dir: Path = typer.Argument(..., help="A run folder written by `bakeoff run`."),
    candidate: str = typer.Option(..., "--candidate", help="LLM candidate name, as in the run's results."),
    to: Path = typer.Option(..., "--to", help="New folder to write (must not exist or be empty)."),
    train_size: int = typer.Option(
        None, "--train-size", help="Which training size's trial (default: the largest finished)."
    ),
    seed: int = typer.Option(None, "--seed", help="Which seed's trial (default: the lowest finished)."),
) -> None:
    """Write the PEFT adapter, the merged model (safetensors), labels.json and prompt.json, and print the vLLM
    command."""
    from bakeoff.serving.export import export_trial
    from bakeoff.serving.predictor import find_trial

    record = find_trial(run_dir, candidate, train_size, seed)
    console.print(f"exporting {record.trial['trial_id']} ...")
    written = export_trial(record, to)
    stdout.print(f"wrote {written['folder']}: {', '.join(written['files'])}")
    for kind, command in written["commands"].items():
        stdout.print(f"serve with vLLM ({kind}): {command}", highlight=False, soft_wrap=True)
