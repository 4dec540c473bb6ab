"""Local calibration: a run's measured/estimated ratios, applied to estimates for the same hardware class.

Every LLM trial stores what it measured (LoRA step time, batch-1 latency), its workload, its architecture
and the hardware it ran on (efficiency/compare.py). The ratios are recomputed here against the current
estimator, so a run made before a change to the formulas still calibrates correctly. A model the run
measured gets its own ratios; any other model gets the run's geometric mean over its trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from bakeoff.efficiency import estimate
from bakeoff.efficiency.hardware import Hardware
from bakeoff.efficiency.introspect import Architecture
from bakeoff.errors import BakeoffError


@dataclass(frozen=True)
class Calibration:
    run_dir: str
    hardware_key: str
    hardware_name: str
    by_model: dict  # model -> {"step": ratio, "latency": ratio, "trials": n}
    overall: dict  # {"step": geometric mean, "latency": geometric mean, "trials": n}
    notes: list = field(default_factory=list)

    def ratios_for(self, model: str) -> tuple[dict, str]:
        if model in self.by_model:
            return self.by_model[model], f"measured for {model} in {self.run_dir}"
        return (
            self.overall,
            f"run-wide mean of {self.overall['trials']} trials in {self.run_dir} ({model} was not measured)",
        )

    def as_dict(self) -> dict:
        return {
            "run_dir": self.run_dir,
            "hardware_key": self.hardware_key,
            "hardware_name": self.hardware_name,
            "by_model": self.by_model,
            "overall": self.overall,
            "notes": self.notes,
        }


def _known(cls, values: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def _geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def trial_ratios(result: dict) -> dict | None:
    """measured / (current) estimate for one trial's stored efficiency record; None when it has none."""
    efficiency = result.get("efficiency") if result else None
    architecture = (result.get("model") or {}).get("architecture") if result else None
    if not efficiency or not architecture:
        return None
    arch = Architecture(**_known(Architecture, architecture))
    workload = estimate.Workload(**_known(estimate.Workload, efficiency["workload"]))
    hardware = Hardware(**_known(Hardware, efficiency["hardware"]))
    step = efficiency.get("measured_step_s")
    latency = efficiency.get("measured_latency_ms_b1")
    estimated_step = estimate.fine_tune(arch, workload, hardware).step_time_s
    estimated_latency = estimate.inference(arch, workload, hardware, batch_sizes=(1,)).latency_ms_by_batch[1]
    return {
        "hardware": hardware,
        "step": step / estimated_step if step else None,
        "latency": latency / estimated_latency if latency else None,
        "estimated_step_s": estimated_step,
        "measured_step_s": step,
        "estimated_latency_ms_b1": estimated_latency,
        "measured_latency_ms_b1": latency,
    }


def load(run_dir: Path) -> Calibration:
    """The calibration a finished (or partly finished) run supports."""
    from bakeoff.run_folder import RunFolder

    folder = RunFolder(run_dir)
    if not folder.has_store():
        raise BakeoffError(
            f"--calibrate {run_dir}: no {folder.store.name} there; pass the output folder of a `bakeoff run`"
        )
    store = folder.open_store()
    try:
        spec = store.get_meta("spec") or {}
        model_of = {c["name"]: c.get("model") for c in spec.get("candidates", [])}
        per_model: dict[str, list[dict]] = {}
        hardware: dict[str, Hardware] = {}
        for trial in store.trials():
            if trial["status"] != "done":
                continue
            ratios = trial_ratios(trial["result"])
            if ratios is None:
                continue
            hardware[ratios["hardware"].key] = ratios["hardware"]
            per_model.setdefault(model_of.get(trial["candidate"]) or trial["candidate"], []).append(ratios)
    finally:
        store.db.close()
    if not per_model:
        raise BakeoffError(
            f"--calibrate {run_dir}: the run has no finished LLM trial with measured step time or "
            "latency; "
            "run one (e.g. bench/configs/estimator_calibration.yaml) first"
        )
    if len(hardware) > 1:
        raise BakeoffError(
            f"--calibrate {run_dir}: trials ran on several hardware classes ({', '.join(hardware)}); "
            "calibrate from a run made on one"
        )
    ((key, machine),) = hardware.items()
    by_model = {
        model: {
            "step": _geomean([r["step"] for r in rows]),
            "latency": _geomean([r["latency"] for r in rows]),
            "trials": len(rows),
        }
        for model, rows in per_model.items()
    }
    everything = [r for rows in per_model.values() for r in rows]
    overall = {
        "step": _geomean([r["step"] for r in everything]),
        "latency": _geomean([r["latency"] for r in everything]),
        "trials": len(everything),
    }
    return Calibration(str(run_dir), key, machine.name, by_model, overall)


def apply(record: dict, calibration: Calibration) -> dict:
    """Scale one estimate record's times by the calibration's ratios; capacity is re-planned by the caller."""
    if record["hardware"]["key"] != calibration.hardware_key:
        record["calibration"] = {
            "applied": False,
            "run_dir": calibration.run_dir,
            "reason": f"the run measured {calibration.hardware_key}, these estimates are for "
            f"{record['hardware']['key']}",
        }
        return record
    ratios, basis = calibration.ratios_for(record["model"])
    step, latency = ratios["step"] or 1.0, ratios["latency"] or 1.0
    tune, serve = dict(record["fine_tune"]), dict(record["inference"])
    for key in ("step_time_s", "time_s", "cost_usd"):
        tune[key] *= step
    serve["latency_ms_by_batch"] = {b: ms * latency for b, ms in serve["latency_ms_by_batch"].items()}
    serve["items_per_s_at_best"] /= latency
    serve["cost_usd_per_1k_items"] *= latency
    serve["generation_ms_per_item_batch1"] *= latency
    serve["prefill_ms_batch1"] *= latency
    record = {**record, "fine_tune": tune, "inference": serve}
    record["calibration"] = {
        "applied": True,
        "run_dir": calibration.run_dir,
        "hardware": calibration.hardware_key,
        "step_ratio": step,
        "latency_ratio": latency,
        "basis": basis,
    }
    return record
