"""Estimate records for a list of models on one GPU: architecture, fine-tune, inference, capacity.

Used by `bakeoff estimate` and at the end of every run (for the run's LLM candidates on the GPUs in
`efficiency.gpus`), so the report can say what each candidate would cost on the hardware a team buys.
"""

from __future__ import annotations

from dataclasses import replace

from bakeoff.efficiency import capacity, estimate
from bakeoff.efficiency.hardware import hardware_for
from bakeoff.efficiency.introspect import Architecture


def estimate_record(
    name: str,
    arch: Architecture,
    gpu_key: str,
    workload: estimate.Workload,
    sla_p95_ms: float,
    load: float,
    usd_per_hour: float | None = None,
    calibration=None,
) -> dict:
    """`calibration` (efficiency.calibrate.Calibration): scale times by a run's measured/estimated ratios."""
    hardware = hardware_for(gpu_key, usd_per_hour)
    tune = estimate.fine_tune(arch, workload, hardware)
    # A replica spans as many GPUs as its weights need; its latency then gets all of their bandwidth and FLOP/s.
    weight_bytes = estimate.serving_weight_bytes(arch, workload, hardware)
    needed = capacity.gpus_to_hold(weight_bytes, hardware.memory_gb)
    serving_workload = (
        replace(workload, gpus_per_replica=max(needed, workload.gpus_per_replica))
        if not hardware.measured
        else workload
    )
    if workload.output_tokens:  # extraction / generation: prefill + a decode step per written token
        from bakeoff.efficiency import decode_estimate

        written = decode_estimate.generation(arch, serving_workload, hardware, workload.output_tokens)
        serve = decode_estimate.as_inference(arch, written)
    else:
        serve = estimate.inference(arch, serving_workload, hardware)
    record = {
        "model": name,
        "architecture": arch.as_dict(),
        "hardware": hardware.as_dict(),
        "workload": dict(workload.__dict__),
        "fine_tune": estimate.as_dict(tune),
        "inference": estimate.as_dict(serve),
    }
    if calibration is not None:
        from bakeoff.efficiency.calibrate import apply

        record = apply(record, calibration)
    plan = capacity.plan(
        estimate.InferenceEstimate(**record["inference"]),
        load,
        sla_p95_ms,
        hardware.memory_gb,
        hardware.usd_per_hour,
        gpus_per_replica=serving_workload.gpus_per_replica,
    )
    record["capacity"] = plan.as_dict()
    return record


def estimate_records(
    models: list[str],
    gpu_key: str,
    workload: estimate.Workload,
    sla_p95_ms: float,
    load: float,
    usd_per_hour: float | None = None,
    calibration=None,
) -> list[dict]:
    """One record per model (catalog name, folder or cached hub id), all on `gpu_key`."""
    from bakeoff.efficiency.catalog import architecture_of  # reads configs: needs transformers

    return [
        estimate_record(name, architecture_of(name), gpu_key, workload, sla_p95_ms, load, usd_per_hour, calibration)
        for name in models
    ]
