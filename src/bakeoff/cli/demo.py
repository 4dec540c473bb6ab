"""`bakeoff demo`: the built-in comparison, offline, on CPU: two real small LLMs vs zero-shot vs baselines."""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path

import typer
from rich.console import Console

from bakeoff.cli.common import console, user_errors
from bakeoff.cli.run import show
from bakeoff.config import RunSpec, load_spec, spec_from_dict


def demo_config_path() -> Path:
    return Path(str(files("bakeoff").joinpath("builtin/demo.yaml")))


def without_qlora_rows(spec: RunSpec) -> RunSpec:
    """The demo without its QLoRA row (SmolLM2-135M, NF4 base through bitsandbytes' CPU backend)."""
    raw = spec.model_dump(mode="json", exclude_unset=True)
    raw["candidates"] = [candidate for candidate in raw["candidates"] if candidate.get("method") != "qlora"]
    return spec_from_dict(raw, "demo --no-qlora")


def has_bitsandbytes() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


@user_errors
def demo_command(
    out: Path = typer.Option(Path("runs/demo"), help="Run folder."),
    qlora: bool | None = typer.Option(
        None,
        "--qlora/--no-qlora",
        help="Keep or drop the SmolLM2-135M QLoRA row (~1 min of the demo on 2 CPU cores). "
        "Default: kept when bitsandbytes is installed (`make demo` installs it).",
        show_default=False,
    ),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. training.epochs=3."),
) -> None:
    """Fine-tune SmolLM2-135M (Llama) and Gemma-3-270M on built-in support tickets at two training
    sizes, and SmolLM2 with QLoRA at the larger one; compare with their zero-shot selves and with TF-IDF
    and MiniLM baselines."""
    spec = load_spec(demo_config_path(), [*(overrides or []), f"output.dir={out}"])
    if qlora is None and not has_bitsandbytes():
        Console(stderr=True).print(
            "demo: bitsandbytes is not installed, so the QLoRA row is left out "
            "(pip install 'bakeoff[qlora]' adds it; --no-qlora silences this)",
            markup=False,
            highlight=False,
        )
        qlora = False
    from bakeoff.api import run

    show(run(spec if qlora is not False else without_qlora_rows(spec), console))
