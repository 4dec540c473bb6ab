"""The notebook API: `bakeoff.load_run(path)` and `bakeoff.recommend(run, **answers)`.

Both read the run's store (results.sqlite) and write nothing: not the store, not the report files.
A run is read the way `bakeoff recommend` reads it, so a notebook and the CLI give the same answer.
No torch (pandas only when a frame is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bakeoff.errors import ConfigError
from bakeoff.results import Recommendation, RunResults, TrialRecord

if TYPE_CHECKING:
    import pandas as pd


def _stat_columns(prefix: str, stat) -> dict[str, float | None]:
    if stat is None:
        return {prefix: None, f"{prefix}_ci_low": None, f"{prefix}_ci_high": None}
    return {prefix: stat.value, f"{prefix}_ci_low": stat.ci_low, f"{prefix}_ci_high": stat.ci_high}


def trial_row(trial: TrialRecord) -> dict[str, Any]:
    """The main numbers of one trial, flat: what the terminal table shows, with interval bounds as columns."""
    metrics, timings = trial.metrics, trial.timings
    test, train = (metrics.test, metrics.train) if metrics else (None, None)
    robustness = (metrics.robustness if metrics else None) or {}
    by_score = ((metrics.out_of_scope if metrics else None) or {}).get("by_score") or {}
    calibration = (metrics.calibration if metrics else None) or {}
    return {
        "trial_id": trial.trial_id,
        "candidate": trial.candidate,
        "model_name": trial.model_name,
        "method": trial.method,
        "train_size": trial.train_size,
        "seed": trial.seed,
        "status": trial.status,
        **_stat_columns("test_accuracy", test.accuracy if test else None),
        **_stat_columns("test_macro_f1", test.macro_f1 if test else None),
        "train_accuracy": train.accuracy.value if train and train.accuracy else None,
        "perturbed_accuracy": robustness.get("mean_perturbed_accuracy"),
        "oos_auroc": (by_score.get("max_prob") or {}).get("auroc"),
        "ece": calibration.get("ece"),
        "fine_tune_s": timings.fine_tune_s if timings else None,
        "inference_items_per_s": timings.inference_items_per_s if timings else None,
        "latency_ms_p95": timings.latency_ms_p95 if timings else None,
        "peak_memory_mb": timings.peak_memory_mb if timings else None,
        "error": trial.error,
        **(_target_columns(test, train) if metrics and metrics.task_type in TARGET_TASKS else {}),
    }


TARGET_TASKS = ("extraction", "generation")


def _target_columns(test, train) -> dict[str, Any]:
    """An extraction or generation trial's own numbers (its accuracy and macro-F1 columns stay empty)."""
    columns: dict[str, Any] = {}
    for name in ("record_exact_match", "field_f1", "valid_output_rate", "hallucination_rate", "chrf", "rouge_l"):
        stat = getattr(test, name, None) if test else None
        if stat is not None:
            columns |= _stat_columns(f"test_{name}", stat)
    for name in ("record_exact_match", "chrf"):
        stat = getattr(train, name, None) if train else None
        if stat is not None:
            columns[f"train_{name}"] = stat.value
    return columns


@dataclass(frozen=True)
class Run:
    """A finished (or partly finished) run, read from its folder.

    `trials` are typed records (`bakeoff.results.TrialRecord`); `frame` is one row per trial of the main
    metrics, with `<metric>_ci_low` / `<metric>_ci_high` columns; `recommendation` is the answer for the
    run's own decision answers (None before any trial finished).
    """

    path: Path
    results: RunResults

    @property
    def name(self) -> str | None:
        return self.results.name

    @property
    def trials(self) -> list[TrialRecord]:
        return self.results.trials

    @property
    def recommendation(self) -> Recommendation | None:
        return self.results.recommendation

    def trial(self, trial_id: str) -> TrialRecord:
        for trial in self.trials:
            if trial.trial_id == trial_id:
                return trial
        raise KeyError(f"{trial_id}: no such trial; trials are {', '.join(t.trial_id for t in self.trials)}")

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([trial_row(t) for t in self.trials]).set_index("trial_id")

    @property
    def frame(self) -> pd.DataFrame:
        return self.to_frame()


def load_run(path: str | Path) -> Run:
    """Read a run folder (the one holding results.sqlite) into typed records, with the recommendation for
    the run's own answers. Writes nothing."""
    return read_run(Path(path), decide=True)


def read_run(path: Path, decide: bool) -> Run:
    """The run in `path`; with `decide`, the cross-trial analysis is recomputed in memory (as `bakeoff report`
    does before deciding, but without storing it: the store may be mid-run or have been analysed before
    later trials finished) and the recommendation made from it."""
    from bakeoff.decision.engine import recommend
    from bakeoff.report.build import load_results
    from bakeoff.runners.analysis import analyse_run

    stored = load_results(path)
    spec = stored["run"].get("spec")
    if decide and spec and any(t["status"] == "done" for t in stored["trials"]):
        stored["run"]["analysis"] = analyse_run(stored["trials"], path, spec)
    results = RunResults.from_stored(stored)
    if decide and spec and results.done_trials:
        decision = recommend(results, _items(path, results))
        results = results.model_copy(update={"recommendation": Recommendation.model_validate(decision)})
    return Run(path=path, results=results)


def _items(path: Path, results: RunResults):
    """The trials' stored per-item probabilities when the decision has `costs` (it prices every item), else None."""
    from bakeoff.decision.costs import read_item_scores

    costed = ((results.run.spec or {}).get("decision") or {}).get("costs") is not None
    return read_item_scores(path, results) if costed else None


def recommend(run: Run | str | Path, **answers: Any) -> Recommendation:
    """Re-decide from stored results with other decision answers (the keys of the config's `decision:`),
    e.g. `recommend(run, sla_p95_ms=100, out_of_scope_share=0.2)` or `recommend(run, costs={"review": 2.5})`
    (a section's other keys are kept). Writes nothing: costs are recomputed from the stored probabilities."""
    from bakeoff.config import DecisionSpec
    from bakeoff.decision.engine import recommend as decide
    from bakeoff.decision.engine import with_answers
    from bakeoff.decision.inputs import merged
    from bakeoff.errors import BakeoffError

    if not isinstance(run, Run):
        run = load_run(run)
    if not any(t.done for t in run.trials):
        raise BakeoffError(f"{run.path}: no finished trials to decide from")
    current = (run.results.run.spec or {}).get("decision") or {}
    try:
        decision = DecisionSpec.model_validate(merged(current, answers)).model_dump()
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(
            f"recommend() answers: {problems} (the keys are those of the config's `decision:` section)"
        ) from None
    results = with_answers(run.results, decision)
    return Recommendation.model_validate(decide(results, _items(run.path, results)))
