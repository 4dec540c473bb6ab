"""A run's cross-trial analysis: evaluation's part (learning curves, paired comparisons, the LLM judge) beside
efficiency's (estimates on each GPU of `efficiency.gpus`, from the architectures and workloads the trials
measured). No torch.

One function computes it (`analyse_run`), and the pipeline (`runners/pipeline.py`) calls it once per run, with
the judge, and stores it as `run.analysis`. Every reader (the report, `bakeoff.load_run`, `recommend`, the MLflow
export) reads what was stored (`stored_analysis`), so they all give the recommendation the run gave. It lives
here, between efficiency and those readers, rather than in the pipeline above them, for one case only: a run
folder whose store holds no analysis (written before the runner stored one), or one older than trials that
finished later (a resumed run stopped before its analysis). Readers then compute it in memory without the
judge, never writing it back, and the analysis says so (`computed_when_read`, and the judge's `skipped`).
"""

from __future__ import annotations

from pathlib import Path

from bakeoff.efficiency.plan import gpu_estimates
from bakeoff.evaluation.analysis import analyse
from bakeoff.evaluation.judge import Judge

# The finished trials an analysis covered: a reader knows whether later trials are missing from it.
ANALYSED_TRIALS = "analysed_trials"


def analyse_run(
    trials: list[dict], run_dir: Path, spec: dict, judge: Judge | None = None, judge_note: str | None = None
) -> dict:
    """`run.analysis`: see `evaluation.analysis.analyse` and `efficiency.plan.gpu_estimates`. `spec` is the
    run's spec as JSON; `judge` the LLM judge when `evaluation.judge` is set, `judge_note` who it is (or why
    there is none)."""
    from bakeoff.config import EfficiencySpec

    # Validated with defaults, so run folders written before a setting existed still rebuild.
    efficiency = EfficiencySpec.model_validate(spec.get("efficiency") or {}).model_dump(mode="json")
    estimates = gpu_estimates(trials, efficiency, spec["grid"]["train_sizes"], spec["training"]["epochs"])
    return analyse(trials, run_dir, spec, judge, judge_note) | {
        "gpu_estimates": estimates,
        ANALYSED_TRIALS: _done(trials),
    }


def stored_analysis(meta: dict, trials: list[dict], run_dir: Path) -> dict:
    """The analysis the pipeline stored in `meta` (the store's run metadata); for a store that has none, or
    whose analysis misses trials that finished after it, the same analysis computed here without the judge."""
    analysis = meta.get("analysis")
    done = _done(trials)
    # An analysis stored before the coverage was recorded covers what it covers: it is read as it is.
    if analysis is not None and analysis.get(ANALYSED_TRIALS, done) == done:
        return analysis
    reason = (
        "this run folder's store holds no analysis (made before bakeoff stored it, or the run stopped first)"
        if analysis is None
        else "trials finished after the stored analysis (a resumed run stopped before its analysis)"
    )
    judge_note = f"{reason}: computed when read, without the judge; run `bakeoff run CONFIG` again to judge"
    return analyse_run(trials, run_dir, meta["spec"], None, judge_note) | {
        "computed_when_read": f"{reason}; run `bakeoff run CONFIG` again to store it (trials are not redone)"
    }


def _done(trials: list[dict]) -> list[str]:
    return sorted(trial["trial_id"] for trial in trials if trial["status"] == "done")
