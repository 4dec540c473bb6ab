"""`bakeoff demo`: the built-in comparison, offline, on CPU: two real small LLMs vs zero-shot vs baselines."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import typer

from bakeoff.cli.common import user_errors
from bakeoff.cli.run import execute
from bakeoff.config import RunSpec, load_spec, spec_from_dict

QLORA_ROW = {"name": "smollm2-135m qlora", "model": "smollm2-135m", "method": "qlora"}


def demo_config_path() -> Path:
    return Path(str(files("bakeoff").joinpath("builtin/demo.yaml")))


def with_qlora_row(spec: RunSpec) -> RunSpec:
    """The demo plus SmolLM2-135M with QLoRA (NF4 base through bitsandbytes' CPU backend) at the larger
    training size, beside its LoRA row. Not in the default demo: 4-bit on CPU is slower (README)."""
    raw = spec.model_dump(mode="json", exclude_unset=True)
    largest = max(spec.grid.train_sizes)
    raw["candidates"] = [*raw["candidates"], QLORA_ROW | {"train_sizes": [largest]}]
    return spec_from_dict(raw, "demo --qlora")


@user_errors
def demo_command(
    out: Path = typer.Option(Path("runs/demo"), help="Run folder."),
    qlora: bool = typer.Option(
        False, "--qlora", help="Add SmolLM2-135M QLoRA at the larger size (a few minutes more on CPU)."
    ),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. grid.train_sizes=[40,120]."),
) -> None:
    """Fine-tune SmolLM2-135M (Llama) and Gemma-3-270M on built-in support tickets at two training
    sizes; compare with their zero-shot selves and with TF-IDF and MiniLM baselines."""
    spec = load_spec(demo_config_path(), [*(overrides or []), f"output.dir={out}"])
    execute(with_qlora_row(spec) if qlora else spec)
