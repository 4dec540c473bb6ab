"""`bakeoff`: which base LLM should we fine-tune for this task? Measured, not claimed."""

from __future__ import annotations

import os

import typer

from bakeoff.cli import demo, run, validate

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for user errors.")) -> None:
    if debug:
        os.environ["BAKEOFF_DEBUG"] = "1"


app.command("run")(run.run_command)
app.command("validate")(validate.validate_command)
app.command("demo")(demo.demo_command)
