"""`bakeoff`: which base LLM should we fine-tune for this task? Measured, not claimed."""

from __future__ import annotations

import os

import typer

from bakeoff.cli import demo, estimate, export_model, loadtest, report, run, serve, validate

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for user errors.")) -> None:
    if debug:
        os.environ["BAKEOFF_DEBUG"] = "1"
    _quiet_libraries()


def _quiet_libraries() -> None:
    """bakeoff draws its own progress bars; the libraries' per-file bars and deprecation notes are noise here."""
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


app.command("run")(run.run_command)
app.command("validate")(validate.validate_command)
app.command("demo")(demo.demo_command)
app.command("estimate")(estimate.estimate_command)
app.command("report")(report.report_command)
app.command("recommend")(report.recommend_command)
app.command("serve")(serve.serve_command)
app.command("loadtest")(loadtest.loadtest_command)

# `bakeoff export model ...` (files for GPU serving stacks) and `bakeoff export mlflow ...` (experiment tracking).
export_app = typer.Typer(no_args_is_help=True, help="Export a finished run: the chosen model, or the results to MLflow.")
app.add_typer(export_app, name="export")
export_app.command("model")(export_model.export_model_command)
