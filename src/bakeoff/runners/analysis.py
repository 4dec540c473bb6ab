"""The cross-trial analysis the runner stores once after the grid: evaluation's (learning curves, paired
comparisons, the judge) beside efficiency's (estimates on each GPU of `efficiency.gpus`, from the
architectures and workloads the trials measured). No torch: `report` and the notebook API recompute it
in memory for run folders stored before the runner did (never writing it back).
"""

from __future__ import annotations

from pathlib import Path

from bakeoff.efficiency.plan import gpu_estimates
from bakeoff.evaluation.analysis import analyse
from bakeoff.evaluation.judge import Judge


def analyse_run(
    trials: list[dict], run_dir: Path, spec: dict, judge: Judge | None = None, judge_note: str | None = None
) -> dict:
    """`run.analysis`: see `evaluation.analysis.analyse` and `efficiency.plan.gpu_estimates`."""
    from bakeoff.config import EfficiencySpec

    # Validated with defaults, so run folders written before a setting existed still rebuild.
    efficiency = EfficiencySpec.model_validate(spec.get("efficiency") or {}).model_dump(mode="json")
    estimates = gpu_estimates(trials, efficiency, spec["grid"]["train_sizes"], spec["training"]["epochs"])
    return analyse(trials, run_dir, spec, judge, judge_note) | {"gpu_estimates": estimates}
