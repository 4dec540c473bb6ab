"""Decide by money (`decision.costs`): each candidate's expected $ per month, errors and human review included.

Every item is either answered by the model, when its top probability reaches a threshold, or sent to a
person. A wrong answer costs `error` (or `matrix[true][predicted]`), a reviewed item `review`. So a candidate
a point less accurate but better calibrated can cost less: its low-confidence items are the wrong ones, and
a person takes them for less than they would cost answered wrong.

The threshold is chosen per trial on the validation split (the lowest expected cost per item there) and only
then applied to test. Choosing it on test would fit the test items' noise and flatter every candidate;
`choose_threshold` is handed validation arrays only, so it cannot. Test then gives the expected cost per item
with a bootstrap interval over its items, and the monthly total: volume x that, plus serving, plus the
fine-tune spread over `amortize_months`. Where a candidate ran several seeds, each seed's model gets its own
threshold and the per-item costs are averaged over seeds. The top two are compared on the same test items
(a paired bootstrap of the difference). Classification only; no torch.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bakeoff.config import CostsSpec
from bakeoff.efficiency.capacity import HOURS_PER_MONTH
from bakeoff.errors import ConfigError
from bakeoff.run_folder import RunFolder

if TYPE_CHECKING:
    from bakeoff.decision.evidence import Evidence
    from bakeoff.results import RunResults

CURVE_THRESHOLDS = np.linspace(0.0, 1.0, 51)  # the report's cost-against-threshold chart
SHOWN_PAIRS = 6  # missing matrix pairs named in the note before "and N more"


@dataclass(frozen=True)
class ItemScores:
    """One trial's stored per-item probabilities (its predictions.npz): test probabilities [N, K] and label ids
    [N]; validation likewise, or None for a trial stored before validation probabilities were kept."""

    test_probs: np.ndarray
    test_true: np.ndarray
    val_probs: np.ndarray | None
    val_true: np.ndarray | None


def read_item_scores(run_dir: Path, run: RunResults) -> dict[str, ItemScores]:
    """Per finished trial id, its stored probabilities (trials whose predictions.npz is missing are left out)."""
    out, folder = {}, RunFolder(run_dir)
    for trial in run.done_trials:
        path = folder.trial(trial.trial_id).predictions
        if not path.is_file():
            continue
        with np.load(path) as stored:
            has_val = "val_probs" in stored.files and stored["val_probs"].ndim == 2
            out[trial.trial_id] = ItemScores(
                stored["probs"],
                stored["y_true"],
                stored["val_probs"] if has_val else None,
                stored["val_true"] if has_val else None,
            )
    return out


def cost_matrix(costs: CostsSpec, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """$ of answering `predicted` when the truth is `true`, as a [K, K] array in the run's label order (rows:
    truth): `costs.matrix` where given, else `costs.error` off the diagonal and 0 on it. Also the notes to show
    (the pairs left to the default). An unknown label is the user's error: one line, with "did you mean"."""
    matrix = np.full((len(labels), len(labels)), float(costs.error))
    np.fill_diagonal(matrix, 0.0)
    given = costs.matrix or {}
    index = {label: i for i, label in enumerate(labels)}
    for true, row in given.items():
        for name in (true, *row):
            if name not in index:
                close = difflib.get_close_matches(name, labels, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    f"decision.costs.matrix: unknown label {name!r}; {hint}the task's labels are "
                    f"{', '.join(map(repr, labels[:20]))}{', ...' if len(labels) > 20 else ''}"
                )
        for predicted, usd in row.items():
            matrix[index[true], index[predicted]] = usd
    notes = []
    if given:
        missing = [(t, p) for t in labels for p in labels if t != p and p not in given.get(t, {})]
        if missing:
            named = ", ".join(f"{t}->{p}" for t, p in missing[:SHOWN_PAIRS])
            more = f" and {len(missing) - SHOWN_PAIRS} more" if len(missing) > SHOWN_PAIRS else ""
            notes.append(
                f"decision.costs.matrix: {len(missing)} of {len(labels) * (len(labels) - 1)} wrong-label pairs not "
                f"given ({named}{more}): they cost `error` (${costs.error:g}); a right answer costs $0 unless given"
            )
    return matrix, notes


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float  # answer when the top probability >= this; below it a person reviews the item
    usd_per_item: float  # expected cost per item on validation at the threshold


def _sorted_costs(probs: np.ndarray, true: np.ndarray, matrix: np.ndarray):
    """Confidences ascending, with the suffix sums of the answered-wrong costs (suffix[k] = cost of answering
    every item from the k-th least confident on)."""
    confidence = probs.max(axis=1)
    wrong_usd = matrix[true, probs.argmax(axis=1)]
    order = np.argsort(confidence, kind="stable")
    suffix = np.r_[np.cumsum(wrong_usd[order][::-1])[::-1], 0.0]
    return confidence[order], suffix


def _usd_per_item_at(confidence_sorted, suffix, review: float, thresholds: np.ndarray) -> np.ndarray:
    reviewed = np.searchsorted(confidence_sorted, thresholds, side="left")  # items below each threshold
    return (suffix[reviewed] + review * reviewed) / max(1, len(confidence_sorted))


def choose_threshold(
    val_probs: np.ndarray, val_true: np.ndarray, matrix: np.ndarray, review: float | None
) -> ThresholdChoice:
    """The confidence threshold with the lowest expected cost per item on validation (validation only: the
    test split is not an argument). Among equal costs the lowest threshold wins: more items automated. With no
    review cost there is no one to send items to: every item is answered (threshold 0)."""
    confidence_sorted, suffix = _sorted_costs(val_probs, val_true, matrix)
    if review is None or not len(confidence_sorted):
        return ThresholdChoice(0.0, float(suffix[0] / max(1, len(confidence_sorted))))
    # Answer everything (0), answer from each validation confidence up, review everything (just above the top).
    candidates = np.unique(np.r_[0.0, confidence_sorted, np.nextafter(confidence_sorted[-1], 2.0)])
    per_item = _usd_per_item_at(confidence_sorted, suffix, review, candidates)
    best = int(np.flatnonzero(per_item <= per_item.min() + 1e-12 * max(1.0, per_item.min()))[0])
    return ThresholdChoice(float(candidates[best]), float(per_item[best]))


def validation_curve(
    val_probs: np.ndarray, val_true: np.ndarray, matrix: np.ndarray, review: float | None
) -> np.ndarray:
    """Expected $ per item on validation at each of CURVE_THRESHOLDS (the report's chart)."""
    confidence_sorted, suffix = _sorted_costs(val_probs, val_true, matrix)
    if review is None:
        return np.full(len(CURVE_THRESHOLDS), suffix[0] / max(1, len(confidence_sorted)))
    return _usd_per_item_at(confidence_sorted, suffix, review, CURVE_THRESHOLDS)


def item_costs(
    probs: np.ndarray, true: np.ndarray, matrix: np.ndarray, review: float | None, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item at `threshold`: $ of wrong answers, $ of review, and whether the model answered (1.0) or not."""
    answered = probs.max(axis=1) >= threshold
    wrong_usd = np.where(answered, matrix[true, probs.argmax(axis=1)], 0.0)
    review_usd = np.where(answered, 0.0, review or 0.0)
    return wrong_usd, review_usd, answered.astype(float)


@dataclass(frozen=True)
class CostedTrials:
    """One candidate at one training size, its seeds' per-item test costs averaged (each seed at its own
    threshold, chosen on validation)."""

    candidate: str
    train_size: int
    thresholds: tuple[float, ...]  # per seed
    test_true: np.ndarray  # [N] label ids: paired comparisons need the same items
    error_usd: np.ndarray  # [N] $ of wrong answers per test item
    review_usd: np.ndarray  # [N] $ of review per test item
    answered: np.ndarray  # [N] share of seeds whose model answered the item
    curve_usd_per_1k: np.ndarray  # [len(CURVE_THRESHOLDS)] validation $ per 1k items, mean over seeds

    @property
    def usd_per_item(self) -> np.ndarray:
        return self.error_usd + self.review_usd


@dataclass(frozen=True)
class CostTable:
    """Every (candidate, training size)'s per-item costs under one `decision.costs`, and what prices them."""

    by_trials: dict[tuple[str, int], CostedTrials]
    costs: CostsSpec
    volume: float  # items per month
    notes: tuple[str, ...]
    n_resamples: int
    confidence: float


def volume_per_month(costs: CostsSpec, load_items_per_s: float) -> float:
    """`costs.volume`, or the load running around the clock (the load the serving cost is planned for)."""
    return costs.volume if costs.volume is not None else load_items_per_s * 3600 * HOURS_PER_MONTH


def cost_table(
    run: RunResults, items: Mapping[str, ItemScores], costs: CostsSpec, load_items_per_s: float
) -> CostTable:
    """Costs of every (candidate, training size) of the run. Refused, in one line: a task other than
    classification, and trials stored without per-item validation probabilities."""
    from bakeoff.config import EvaluationSpec

    if run.run.task_type != "classification":
        raise ConfigError(
            f"decision.costs: costing errors applies to classification runs; this run's task.type is "
            f"`{run.run.task_type}` (per wrong field or failed reply: not yet). Remove `decision.costs`"
        )
    lacking = [t.trial_id for t in run.done_trials if (s := items.get(t.trial_id)) is None or s.val_probs is None]
    if lacking:
        which = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
        raise ConfigError(
            f"decision.costs: {len(lacking)} trial(s) stored no per-item validation probabilities ({which}): they "
            "ran before bakeoff kept them, so their errors cannot be costed; remove `decision.costs`, or run "
            "the config again in a new run folder"
        )
    matrix, notes = cost_matrix(costs, run.run.labels)
    groups: dict[tuple[str, int], list] = {}
    for trial in sorted(run.done_trials, key=lambda t: t.seed):
        groups.setdefault((trial.candidate, trial.train_size), []).append(items[trial.trial_id])
    table = {}
    for (candidate, size), seeds in groups.items():
        seeds = [s for s in seeds if np.array_equal(s.test_true, seeds[0].test_true)]  # same items to average
        chosen = [choose_threshold(s.val_probs, s.val_true, matrix, costs.review) for s in seeds]
        parts = [
            item_costs(s.test_probs, s.test_true, matrix, costs.review, c.threshold) for s, c in zip(seeds, chosen)
        ]
        curves = [validation_curve(s.val_probs, s.val_true, matrix, costs.review) for s in seeds]
        table[(candidate, size)] = CostedTrials(
            candidate,
            size,
            tuple(c.threshold for c in chosen),
            seeds[0].test_true,
            np.mean([p[0] for p in parts], axis=0),
            np.mean([p[1] for p in parts], axis=0),
            np.mean([p[2] for p in parts], axis=0),
            1000 * np.mean(curves, axis=0),
        )
    evaluation = EvaluationSpec.model_validate((run.run.spec or {}).get("evaluation") or {})
    volume = volume_per_month(costs, load_items_per_s)
    return CostTable(table, costs, volume, tuple(notes), evaluation.bootstrap_samples, evaluation.confidence)


@functools.lru_cache(maxsize=8)
def _resamples(n_items: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Bootstrap item indices [B, N], seeded: the same draws for every candidate, so differences are paired.
    Cached (read-only): the sensitivity what-ifs re-price every candidate a dozen times on the same items."""
    draws = np.random.default_rng(seed).integers(0, n_items, size=(n_resamples, n_items))
    draws.flags.writeable = False
    return draws


def mean_interval(values: np.ndarray, n_resamples: int, confidence: float) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` [N] (per-item $, or 0/1 answered)."""
    if not len(values):
        return (0.0, 0.0)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values[_resamples(len(values), n_resamples)].mean(axis=1), [alpha, 1 - alpha])
    return float(low), float(high)


def difference_interval(
    a: np.ndarray, b: np.ndarray, n_resamples: int, confidence: float, paired: bool
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(b) - mean(a). `paired` (the same items, in the same order): one
    draw of items for both, so what the items share (easy or hard tickets) cancels out; else independent draws."""
    alpha = (1 - confidence) / 2
    if paired:
        means = (b - a)[_resamples(len(a), n_resamples)].mean(axis=1)
    else:
        draws_a, draws_b = _resamples(len(a), n_resamples), _resamples(len(b), n_resamples, seed=1)
        means = b[draws_b].mean(axis=1) - a[draws_a].mean(axis=1)
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class CostEvidence:
    """A candidate's expected costs at the decision's answers, measured on test at `measured_at` examples."""

    measured_at: int  # training size whose trials were costed (the evidence's trial size)
    seeds: int
    test_items: int
    threshold: float  # mean over seeds of the threshold chosen on validation
    automation_rate: float  # share of test items the model answered (no person)
    automation_rate_ci: tuple[float, float]
    usd_per_1k_items: float  # errors + review on test, per 1,000 items
    usd_per_1k_items_ci: tuple[float, float]
    usd_per_month_errors: float
    usd_per_month_review: float
    usd_per_month_serving: float | None  # None: no serving plan meets the load (the SLA cannot be met)
    usd_per_month_fine_tune: float  # the fine-tune spread over amortize_months
    usd_per_month_total: float | None
    usd_per_month_total_ci: tuple[float, float] | None


def price(e: Evidence, table: CostTable) -> CostEvidence | None:
    """`e`'s expected monthly cost at its trial size (None when those trials were not costed)."""
    costed = table.by_trials.get((e.candidate, e.trial_size))
    if costed is None:
        return None
    volume = table.volume
    per_item = costed.usd_per_item
    low, high = mean_interval(per_item, table.n_resamples, table.confidence)
    fine_tune = e.fine_tune_usd / table.costs.amortize_months
    variable = volume * float(per_item.mean()) if len(per_item) else 0.0
    fixed = None if e.usd_per_month is None else e.usd_per_month + fine_tune
    return CostEvidence(
        measured_at=costed.train_size,
        seeds=len(costed.thresholds),
        test_items=len(per_item),
        threshold=float(np.mean(costed.thresholds)),
        automation_rate=float(costed.answered.mean()) if len(per_item) else 1.0,
        automation_rate_ci=mean_interval(costed.answered, table.n_resamples, table.confidence),
        usd_per_1k_items=1000 * float(per_item.mean()) if len(per_item) else 0.0,
        usd_per_1k_items_ci=(1000 * low, 1000 * high),
        usd_per_month_errors=volume * float(costed.error_usd.mean()) if len(per_item) else 0.0,
        usd_per_month_review=volume * float(costed.review_usd.mean()) if len(per_item) else 0.0,
        usd_per_month_serving=e.usd_per_month,
        usd_per_month_fine_tune=fine_tune,
        usd_per_month_total=None if fixed is None else fixed + variable,
        usd_per_month_total_ci=None if fixed is None else (fixed + volume * low, fixed + volume * high),
    )


def paired_difference(a: Evidence, b: Evidence, table: CostTable) -> dict:
    """Expected monthly cost of `b` minus `a` (positive: `a` is cheaper), with a paired bootstrap interval over
    the same test items; unpaired (independent draws) where the two were scored on different items. Serving
    and the amortised fine-tune are fixed amounts: only errors and reviews vary with the items."""
    ca, cb = table.by_trials[(a.candidate, a.trial_size)], table.by_trials[(b.candidate, b.trial_size)]
    fixed = (b.costs.usd_per_month_serving + b.costs.usd_per_month_fine_tune) - (
        a.costs.usd_per_month_serving + a.costs.usd_per_month_fine_tune
    )
    paired = np.array_equal(ca.test_true, cb.test_true)
    low, high = difference_interval(ca.usd_per_item, cb.usd_per_item, table.n_resamples, table.confidence, paired)
    low, high = fixed + table.volume * low, fixed + table.volume * high
    difference = b.costs.usd_per_month_total - a.costs.usd_per_month_total
    return {
        "cheaper": a.candidate,
        "other": b.candidate,
        "usd_per_month_difference": float(difference),
        "ci": [float(low), float(high)],
        "paired": paired,
        "within_noise": bool(low <= 0 <= high),
    }


def curves(evidence: list[Evidence], table: CostTable) -> dict[str, dict]:
    """Per candidate, validation $ per 1k items against the threshold, at the size its costs were read at."""
    out = {}
    for e in evidence:
        costed = table.by_trials.get((e.candidate, e.trial_size))
        if costed is not None:
            out[e.candidate] = {
                "threshold": CURVE_THRESHOLDS.round(3).tolist(),
                "usd_per_1k_items": costed.curve_usd_per_1k.round(6).tolist(),
                "chosen_threshold": float(np.mean(costed.thresholds)),
            }
    return out
