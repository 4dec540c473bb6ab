"""`bakeoff`: which base LLM should we fine-tune for this task? Measured, not claimed."""

from __future__ import annotations

import os

import typer

from bakeoff.cli import demo, estimate, export_mlflow, export_model, loadtest, report, run, serve, validate

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for user errors.")) -> None:
    if debug:
        os.environ["BAKEOFF_DEBUG"] = "1"
    _quiet_libraries()


def _quiet_libraries() -> None:
    """bakeoff draws its own progress bars; the libraries' per-file bars and advisory notes are noise here.

    Environment variables, read when those libraries are first imported, rather than importing
    transformers here: `report`, `recommend` and `--help` must start without torch or transformers."""
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # also turns off transformers' own tqdm bars
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    # scikit-learn suspects a regression target when a classifier sees more classes than half its samples
    # (77 intents, 100 examples): here the labels are classes by the config, so the note is only noise.
    warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%", category=UserWarning)


app.command("run")(run.run_command)
app.command("validate")(validate.validate_command)
app.command("demo")(demo.demo_command)
app.command("estimate")(estimate.estimate_command)
app.command("report")(report.report_command)
app.command("recommend")(report.recommend_command)
app.command("serve")(serve.serve_command)
app.command("loadtest")(loadtest.loadtest_command)

# `bakeoff export model ...` (files for GPU serving stacks) and `bakeoff export mlflow ...` (experiment tracking).
export_app = typer.Typer(
    no_args_is_help=True, help="Export a finished run: the chosen model, or the results to MLflow."
)
app.add_typer(export_app, name="export")
export_app.command("model")(export_model.export_model_command)
export_app.command("mlflow")(export_mlflow.export_mlflow_command)
