"""`bakeoff estimate MODEL ...`: architecture facts, fine-tune cost and serving capacity, from configs alone."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from bakeoff.cli.common import console, stdout, user_errors


def _table(records: list[dict], workload, sla: float, load: float) -> Table:
    from bakeoff.report.summary import estimate_row

    hardware = records[0]["hardware"]
    table = Table(title=f"estimates on {hardware['name']} (${hardware['usd_per_hour']:.2f}/h): {workload.method}, "
                        f"{workload.train_examples} examples x {workload.epochs} epochs; serve {load:g} items/s at p95 <= {sla:g} ms")
    rows = [estimate_row(r) for r in records]
    for column in rows[0]:
        if column != "GPU":  # one GPU per table: it is in the title
            table.add_column(column, justify="left" if column in ("model", "type") else "right")
    for row in rows:
        table.add_row(*(value for column, value in row.items() if column != "GPU"))
    return table


@user_errors
def estimate_command(
    models: list[str] = typer.Argument(..., help="Catalog names (see --list), local model folders, or cached hub ids."),
    gpu: str = typer.Option("a10g", help="GPU to estimate for (see --list)."),
    method: str = typer.Option("lora", help="lora | qlora | full"),
    train_examples: int = typer.Option(500, help="Training examples."),
    epochs: int = typer.Option(3, help="Epochs."),
    prompt_tokens: int = typer.Option(64, help="Mean prompt length in tokens."),
    num_labels: int = typer.Option(10, help="Number of labels scored per item."),
    sla_p95_ms: float = typer.Option(200.0, help="p95 latency SLA for serving, ms."),
    load: float = typer.Option(50.0, help="Serving load, items per second."),
    usd_per_hour: float = typer.Option(None, help="Override the GPU's $/hour."),
    train_utilisation: float = typer.Option(0.35, help="Share of peak FLOP/s a fine-tune sustains."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    out: Path = typer.Option(None, help="Also write the JSON here."),
) -> None:
    """Estimate fine-tune time/$/memory and serving latency/$/GPUs for each MODEL, from configs alone
    (no weights, no network). Dense vs MoE is read from each config, not assumed."""
    from bakeoff.efficiency.estimate import Workload
    from bakeoff.efficiency.hardware import price_provenance
    from bakeoff.efficiency.plan import estimate_records

    if method not in ("lora", "qlora", "full"):
        from bakeoff.errors import BakeoffError

        raise BakeoffError(f"--method must be lora, qlora or full, not {method!r}")
    workload = Workload(method=method, train_examples=train_examples, epochs=epochs, prompt_tokens=prompt_tokens,
                        num_labels=num_labels, train_utilisation=train_utilisation)
    records = estimate_records(models, gpu, workload, sla_p95_ms, load, usd_per_hour)
    payload = {"workload": workload.__dict__, "sla_p95_ms": sla_p95_ms, "load_items_per_s": load,
               "prices": price_provenance(), "estimates": records}
    if out:
        out.write_text(json.dumps(payload, indent=1))
    if as_json:
        stdout.print_json(json.dumps(payload))
        return
    stdout.print(_table(records, workload, sla_p95_ms, load))
    console.print(f"[dim]Estimates, not measurements: utilisation {train_utilisation:.0%} for training, "
                  f"{workload.inference_utilisation:.0%} for inference; prices: {price_provenance()}. "
                  f"Capacity assumptions: {records[0]['capacity']['assumptions']}.[/dim]")
