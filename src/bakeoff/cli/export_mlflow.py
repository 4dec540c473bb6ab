"""`bakeoff export mlflow RUN_DIR`: a finished run into MLflow (parent run + one child per trial), from the
store only."""

from __future__ import annotations

from pathlib import Path

import typer

from bakeoff.cli.common import console, stdout, user_errors


@user_errors
def export_mlflow_command(
    run_dir: Path = typer.Argument(..., help="A run folder (holds results.sqlite)."),
    tracking_uri: str = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI: a server (http://host:5000), a database (sqlite:///mlflow.db) or a file store "
        "folder (file:/path). Default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in this folder.",
    ),
    experiment: str = typer.Option(
        None, "--experiment", help="MLflow experiment (created if missing). Default: the run's name."
    ),
    weights: bool = typer.Option(
        False,
        "--weights",
        help="Also upload each trial's trained weights (the LoRA adapter "
        "folder; "
        "a full fine-tune's whole model, which can be large).",
    ),
) -> None:
    """Log a run to MLflow: spec, versions and reports on a parent run, each trial's params and metrics on a child run.
    Exporting again updates the same runs."""
    from bakeoff.tracking.mlflow_export import export_run

    summary = export_run(run_dir, tracking_uri, experiment, weights=weights)
    stdout.print(
        f"MLflow: experiment {summary.experiment_id}, parent run {summary.parent_run_id}, "
        f"{len(summary.child_run_ids)} trial runs ({summary.created} created, the rest updated) at "
        f"{summary.tracking_uri}",
        highlight=False,
        soft_wrap=True,
    )
    if summary.tracking_uri.startswith("sqlite:"):
        console.print(
            f"[dim]open it with: mlflow ui --backend-store-uri {summary.tracking_uri}[/dim]",
            highlight=False,
            soft_wrap=True,
        )
    if summary.skipped:
        console.print(f"[yellow]not exported (still running or interrupted): {', '.join(summary.skipped)}[/yellow]")
