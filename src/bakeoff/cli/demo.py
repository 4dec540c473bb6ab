"""`bakeoff demo`: the built-in comparison, offline, on CPU: two real small LLMs vs zero-shot vs baselines."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import typer

from bakeoff.cli.common import user_errors
from bakeoff.cli.run import execute
from bakeoff.config import load_spec


def demo_config_path() -> Path:
    return Path(str(files("bakeoff").joinpath("builtin/demo.yaml")))


@user_errors
def demo_command(
    out: Path = typer.Option(Path("runs/demo"), help="Run folder."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. grid.train_sizes=[40,120]."),
) -> None:
    """Fine-tune SmolLM2-135M (Llama) and Gemma-3-270M on built-in support tickets at two training
    sizes; compare with their zero-shot selves and with TF-IDF and MiniLM baselines."""
    spec = load_spec(demo_config_path(), [*(overrides or []), f"output.dir={out}"])
    execute(spec)
