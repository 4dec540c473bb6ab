"""Measured next to estimated, for the hardware a trial ran on; the ratio calibrates other hardware.

If measured/estimated step time is 2.0 here, the estimator is optimistic by 2x for this model and code
path, and estimates for a GPU can be read with that in mind (the README reports the ratios we see).
"""

from __future__ import annotations

from bakeoff.efficiency import estimate
from bakeoff.efficiency.hardware import Hardware
from bakeoff.efficiency.introspect import Architecture


def measured_vs_estimated(
    arch: Architecture,
    workload: estimate.Workload,
    hardware: Hardware,
    measured_step_s: float | None,
    measured_latency_ms_b1: float | None,
    measured_memory_gb: float | None = None,
) -> dict:
    """`measured_memory_gb`: what the fine-tune held at its peak above what the process held before the trial
    loaded its model (on CPU: the interpreter, torch and earlier trials' heap are in RSS; on CUDA: allocated,
    where that is ~0). That is the training state `estimated_memory_gb` prices."""
    tune = estimate.fine_tune(arch, workload, hardware)
    serve = estimate.inference(arch, workload, hardware, batch_sizes=(1,))
    estimated_latency = serve.latency_ms_by_batch[1]
    return {
        "hardware": hardware.as_dict(),
        "workload": workload.__dict__,
        "estimated_step_s": tune.step_time_s,
        "measured_step_s": measured_step_s,
        "step_ratio_measured_over_estimated": measured_step_s / tune.step_time_s if measured_step_s else None,
        "estimated_latency_ms_b1": estimated_latency,
        "measured_latency_ms_b1": measured_latency_ms_b1,
        "latency_ratio_measured_over_estimated": measured_latency_ms_b1 / estimated_latency
        if measured_latency_ms_b1
        else None,
        "estimated_memory_gb": tune.memory_gb,
        "measured_memory_gb": measured_memory_gb,
        "memory_ratio_measured_over_estimated": measured_memory_gb / tune.memory_gb["total"]
        if measured_memory_gb and tune.memory_gb.get("total")
        else None,
    }
