"""Estimate records for a list of models on one GPU: architecture, fine-tune, inference, capacity.

Used by `bakeoff estimate` and at the end of every run (for the run's LLM candidates on the GPUs in
`efficiency.gpus`), so the report can say what each candidate would cost on the hardware a team buys.
"""

from __future__ import annotations

from bakeoff.efficiency import capacity, estimate
from bakeoff.efficiency.hardware import gpu
from bakeoff.efficiency.introspect import Architecture


def estimate_record(name: str, arch: Architecture, gpu_key: str, workload: estimate.Workload, sla_p95_ms: float, load: float,
                    usd_per_hour: float | None = None) -> dict:
    hardware = gpu(gpu_key, usd_per_hour)
    tune = estimate.fine_tune(arch, workload, hardware)
    serve = estimate.inference(arch, workload, hardware)
    plan = capacity.plan(serve, load, sla_p95_ms, hardware.memory_gb, hardware.usd_per_hour)
    return {"model": name, "architecture": arch.as_dict(), "hardware": hardware.as_dict(), "workload": dict(workload.__dict__),
            "fine_tune": estimate.as_dict(tune),
            "inference": estimate.as_dict(serve), "capacity": plan.as_dict()}


def estimate_records(models: list[str], gpu_key: str, workload: estimate.Workload, sla_p95_ms: float, load: float,
                     usd_per_hour: float | None = None) -> list[dict]:
    """One record per model (catalog name, folder or cached hub id), all on `gpu_key`."""
    from bakeoff.efficiency.catalog import architecture_of  # reads configs: needs transformers

    return [estimate_record(name, architecture_of(name), gpu_key, workload, sla_p95_ms, load, usd_per_hour) for name in models]
