"""`bakeoff estimate MODEL ...`: architecture facts, fine-tune cost and serving capacity, from configs alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from bakeoff.cli.common import console, stdout, user_errors

if TYPE_CHECKING:
    from bakeoff.efficiency.estimate import Workload


def _table(records: list[dict], workload, sla: float, load: float) -> Table:
    from bakeoff.report.summary import estimate_row

    hardware = records[0]["hardware"]
    shape = (
        f"batch {workload.batch_size}, LoRA "
        f"r{workload.lora_rank}" + (", checkpointed" if workload.gradient_checkpointing else "")
        if workload.method != "full"
        else f"batch {workload.batch_size}" + (", checkpointed" if workload.gradient_checkpointing else "")
    )
    serving = f"{records[0]['inference'].get('weight_format', 'bf16')} weights"
    table = Table(
        title=f"estimates on {hardware['name']} (${hardware['usd_per_hour']:.2f}/h): {workload.method}, "
        f"{workload.train_examples} examples x {workload.epochs} epochs, {shape}; serve {serving}, "
        f"{load:g} items/s at p95 <= {sla:g} ms"
    )
    rows = [estimate_row(r) for r in records]
    for column in rows[0]:
        if column != "GPU":  # one GPU per table: it is in the title
            table.add_column(column, justify="left" if column in ("model", "type") else "right")
    for row in rows:
        table.add_row(*(value for column, value in row.items() if column != "GPU"))
    return table


def _calibration_lines(records: list[dict]) -> list[str]:
    lines = []
    for record in records:
        note = record.get("calibration")
        if not note:
            continue
        if note["applied"]:
            lines.append(
                f"{record['model']}: calibrated from {note['run_dir']} on {note['hardware']}: step time "
                f"x{note['step_ratio']:.2f}, "
                f"latency x{note['latency_ratio']:.2f} ({note['basis']})"
            )
        else:
            lines.append(f"{record['model']}: calibration from {note['run_dir']} NOT applied: {note['reason']}")
    return lines


DEFAULT_NUM_LABELS = 10
DEFAULT_LORA_RANK = 16
DEFAULT_BATCH_SIZE = 8


def _refuse_unknown(method: str, weights: str | None) -> None:
    """A fine-tune method or serving weight format bakeoff does not know."""
    from bakeoff.efficiency.estimate import SERVING_WEIGHT_FORMATS
    from bakeoff.errors import BakeoffError

    if method not in ("lora", "qlora", "full"):
        raise BakeoffError(f"--method must be lora, qlora or full, not {method!r}")
    if weights is not None and weights not in SERVING_WEIGHT_FORMATS:
        raise BakeoffError(f"--weights must be one of {', '.join(SERVING_WEIGHT_FORMATS)}, not {weights!r}")


def _refuse_unused(method: str, lora_rank: int | None, output_tokens: int, num_labels: int | None) -> None:
    """An option the other options make meaningless is refused, not silently ignored. --lora-rank and
    --num-labels default to None so that "given" can be told from "left at the default"."""
    from bakeoff.errors import BakeoffError

    if method == "full" and lora_rank is not None:
        raise BakeoffError(
            "--lora-rank has no meaning with --method full (every weight is trained); drop it, or use --method lora"
        )
    if output_tokens and num_labels is not None:
        raise BakeoffError(
            "--num-labels has no meaning with --output-tokens (extraction/generation writes its answer, it scores "
            "no labels); drop one of them"
        )


def _refuse_impossible(batch_size: int | None, train_examples: int, gpu: str, gpus_per_replica: int) -> None:
    """Shapes no fine-tune or replica has; the model-dependent limits (context window, heads) are checked in
    efficiency/plan.py once the architectures are read."""
    from bakeoff.errors import BakeoffError

    if batch_size is not None and batch_size > train_examples:
        raise BakeoffError(
            f"--batch-size {batch_size} is more than the {train_examples} training examples (--train-examples): a "
            "step cannot hold more examples than there are; use a smaller batch or more examples"
        )
    if gpu == "local-cpu" and gpus_per_replica > 1:
        raise BakeoffError(
            f"--gpus-per-replica {gpus_per_replica}: local-cpu is this one machine, measured; tensor parallelism is "
            "for GPUs (pick one with --gpu)"
        )


def _refuse_bad_options(
    *,
    method: str,
    weights: str | None,
    lora_rank: int | None,
    output_tokens: int,
    num_labels: int | None,
    batch_size: int | None,
    train_examples: int,
    gpu: str,
    gpus_per_replica: int,
    **_other_options,
) -> None:
    """Refused, in this order: values bakeoff does not know, options the others make meaningless, impossible shapes."""
    _refuse_unknown(method, weights)
    _refuse_unused(method, lora_rank, output_tokens, num_labels)
    _refuse_impossible(batch_size, train_examples, gpu, gpus_per_replica)


def _load_calibration(calibrate: Path | None):
    """The --calibrate run folder's measured/estimated ratios, or None without --calibrate."""
    if calibrate is None:
        return None
    from bakeoff.efficiency.calibrate import load as load_calibration

    return load_calibration(calibrate)


def _workload(
    *,
    method: str,
    train_examples: int,
    epochs: int,
    prompt_tokens: int,
    num_labels: int | None,
    train_utilisation: float,
    batch_size: int | None,
    lora_rank: int | None,
    gradient_checkpointing: bool,
    gpus_per_replica: int,
    weights: str | None,
    output_tokens: int,
    **_other_options,
) -> Workload:
    """The fine-tune and serving traffic the options describe, with the defaults the options leave unset."""
    from bakeoff.efficiency.estimate import Workload

    return Workload(
        method=method,
        train_examples=train_examples,
        epochs=epochs,
        prompt_tokens=prompt_tokens,
        num_labels=(num_labels or DEFAULT_NUM_LABELS) if not output_tokens else 1,
        train_utilisation=train_utilisation,
        batch_size=batch_size or min(DEFAULT_BATCH_SIZE, train_examples),  # as training does: one batch of all
        lora_rank=lora_rank or DEFAULT_LORA_RANK,
        gradient_checkpointing=gradient_checkpointing,
        gpus_per_replica=gpus_per_replica,
        serving_weights=weights,
        output_tokens=output_tokens,
        label_tokens=output_tokens or 3,  # generation is fine-tuned on its targets; 3: the label default
    )


def _payload(records: list[dict], workload: Workload, sla: float, load: float, calibration) -> dict:
    """What --json prints and --out writes: the workload, the serving target, the prices and the estimates."""
    from bakeoff.efficiency.hardware import price_provenance

    payload = {
        "workload": workload.__dict__,
        "sla_p95_ms": sla,
        "load_items_per_s": load,
        "prices": price_provenance(),
        "estimates": records,
    }
    if calibration is not None:
        payload["calibration"] = calibration.as_dict()
    return payload


def _write_payload(payload: dict, out: Path | None) -> None:
    """--out: the JSON payload, written whether or not --json prints it."""
    from bakeoff.errors import BakeoffError

    if not out:
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=1))
    except OSError as err:
        raise BakeoffError(f"--out {out}: cannot write it ({err.strerror})") from None


def _show(
    payload: dict,
    records: list[dict],
    workload: Workload,
    sla: float,
    load: float,
    train_utilisation: float,
    as_json: bool,
) -> None:
    """The payload as JSON with --json; else the table, the calibration notes and the assumptions behind them."""
    from bakeoff.efficiency.hardware import price_provenance

    if as_json:
        stdout.print_json(json.dumps(payload))
        return
    stdout.print(_table(records, workload, sla, load))
    for line in _calibration_lines(records):
        stdout.print(line, markup=False)
    console.print(
        f"[dim]Estimates, not measurements: utilisation up to {train_utilisation:.0%} for training and "
        f"{workload.inference_utilisation:.0%} for inference, lower at few tokens per pass; prices: "
        f"{price_provenance()}. "
        f"Capacity assumptions: {records[0]['capacity']['assumptions']}.[/dim]"
    )


@user_errors
def estimate_command(
    models: list[str] = typer.Argument(..., help="Catalog names (see --list), local model folders, or cached hub ids."),
    gpu: str = typer.Option(
        "a10g", help="GPU to estimate for (catalog key), or local-cpu for this machine (measured)."
    ),
    method: str = typer.Option("lora", help="lora | qlora | full"),
    train_examples: int = typer.Option(500, min=1, help="Training examples."),
    epochs: int = typer.Option(3, min=1, help="Epochs."),
    prompt_tokens: int = typer.Option(64, min=1, help="Mean prompt length in tokens."),
    num_labels: int = typer.Option(
        None,
        min=1,
        help="Number of labels scored per item (in `latency b=1 ms`, not in `TTFT b=1 ms`); default 10. "
        "Not with --output-tokens.",
    ),
    sla_p95_ms: float = typer.Option(200.0, min=0.001, max=1e9, help="p95 latency SLA for serving, ms."),
    load: float = typer.Option(50.0, min=0.001, max=1e9, help="Serving load, items per second."),
    usd_per_hour: float = typer.Option(None, min=0, max=1e6, help="Override the GPU's $/hour."),
    train_utilisation: float = typer.Option(
        0.35,
        min=0.001,
        max=1.0,
        help="Share of peak FLOP/s a fine-tune sustains at large batches (less at small ones).",
    ),
    batch_size: int = typer.Option(
        None,
        min=1,
        help="Training examples per step (sets tokens per step, activations, utilisation); default 8, or all "
        "examples when fewer.",
    ),
    lora_rank: int = typer.Option(
        None,
        min=1,
        help="LoRA rank (trainable parameters and their optimizer states); default 16. lora and qlora only.",
    ),
    gradient_checkpointing: bool = typer.Option(
        False, "--gradient-checkpointing", help="Recompute activations in backward: less memory, one more forward."
    ),
    gpus_per_replica: int = typer.Option(
        1,
        min=1,
        help="Tensor-parallel GPUs per serving replica (FLOP/s and bandwidth add up, minus all-reduces); "
        "raised automatically when the weights need more.",
    ),
    weights: str = typer.Option(
        None, help="Serving weight format: bf16 | fp8 | int8 | nf4 (default: nf4 for qlora, else bf16)."
    ),
    calibrate: Path = typer.Option(
        None,
        help="A run folder: scale step time and latency by its measured/estimated ratios "
        "(only for the hardware the run measured).",
    ),
    output_tokens: int = typer.Option(
        0,
        min=0,
        help="Extraction/generation: mean tokens written per item (TTFT + decode per token); 0: label scoring.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    out: Path = typer.Option(None, help="Also write the JSON here."),
) -> None:
    """Estimate fine-tune time/$/memory and serving latency/$/GPUs for each MODEL, from configs alone
    (no weights, no network). Dense vs MoE is read from each config, not assumed.

    Latencies: `TTFT b=1 ms` (JSON `inference.prefill_ms_batch1`) is the time to first token, one prompt of
    --prompt-tokens with the LM head on its last position and nothing else: what published TTFT tables report.
    `latency b=1 ms` (`inference.latency_ms_by_batch`) is one classification answer: the prompt (after a shared
    cached instruction prefix) plus scoring --num-labels labels. `generation_ms_per_item_batch1`: the prompt
    then 16 decoded tokens. --output-tokens sets the serving row to extraction/generation."""
    options = dict(locals())  # the arguments above, by name (taken first, before any other local exists)
    from bakeoff.efficiency.plan import estimate_records

    _refuse_bad_options(**options)
    calibration = _load_calibration(calibrate)
    workload = _workload(**options)
    records = estimate_records(models, gpu, workload, sla_p95_ms, load, usd_per_hour, calibration)
    payload = _payload(records, workload, sla_p95_ms, load, calibration)
    _write_payload(payload, out)
    _show(payload, records, workload, sla_p95_ms, load, train_utilisation, as_json)
