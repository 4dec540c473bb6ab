"""The library API: `bakeoff.run(spec)`, `bakeoff.load_run(path)` and `bakeoff.recommend(run, **answers)`.

`run` does what `bakeoff run` does (the CLI calls it): the trials, their analysis, the report files, the
recommendation, MLflow. `load_run` and `recommend` read the run's store (results.sqlite) and write nothing:
not the store, not the report files. All three read the analysis the run stored, the way `bakeoff report`
and the MLflow export read it, so a notebook and the CLI give the same answer. Importing this module loads
no torch (`run` does, once called; pandas only when a frame is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bakeoff.errors import ConfigError
from bakeoff.results import Recommendation, RunResults, TrialRecord

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from bakeoff.config import RunSpec
    from bakeoff.runners.pipeline import Outcome


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
    run's own decision answers (None before any trial finished). `outcome` is what the `bakeoff.run` call that
    returned it did (trials run, skipped, failed; the report files); None from `load_run`, and left out of `==`.
    """

    path: Path
    results: RunResults
    outcome: Outcome | None = field(default=None, compare=False)

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


def run(spec: RunSpec | str | Path, console: Console | None = None) -> Run:
    """Run (or resume) the comparison `spec` describes (a `RunSpec`, or the path of its YAML config): preflight,
    the trials (here or on Ray, as `runner` says), their analysis with the LLM judge, stored once, the report
    files, the recommendation and MLflow logging. Returns the run as `load_run` reads it back. Progress goes to
    `console` (default: stderr); a refusal is a `BakeoffError`, before any training."""
    from rich.console import Console

    from bakeoff.config import load_spec
    from bakeoff.runners.pipeline import run_pipeline

    if isinstance(spec, (str, Path)):
        spec = load_spec(Path(spec), [])
    finished = run_pipeline(spec, console or Console(stderr=True))
    return Run(path=finished.run_dir, results=finished.results, outcome=finished.outcome)


def load_run(path: str | Path) -> Run:
    """Read a run folder (the one holding results.sqlite) into typed records, with the recommendation for
    the run's own answers. Writes nothing."""
    from bakeoff.report.build import read_results

    return Run(path=Path(path), results=read_results(Path(path)))


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
