"""Percentile bootstrap over test items for statistics of per-item score arrays (extraction, generation).

Classification resamples (truth, prediction) pairs with scipy (`evaluation/metrics.py`). Extraction and
generation metrics are ratios of per-item counts (field TP/FP/FN, chrF n-gram statistics) whose arrays have
an item axis plus feature axes ([N] or [N, F]), which scipy's paired bootstrap cannot index (it resamples
the last axis). So these helpers resample the item axis (axis 0) of every array of a `scores` dict together,
with the same method: percentile interval, `evaluation.bootstrap_samples` resamples at
`evaluation.confidence`, `numpy.random.default_rng(seed)`.

A statistic is `statistic(scores) -> np.ndarray [R]`, where each array of `scores` has a leading resample
axis: shape [R, N, ...]. The observed value is the statistic on the full data (R = 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Scores = dict[str, np.ndarray]
Statistic = Callable[[Scores], np.ndarray]

# Resamples are evaluated in chunks of at most this many array elements, so a [1000, N, 18] chrF statistic
# array on a few thousand items stays a few tens of MB.
_CHUNK_ELEMENTS = 4_000_000


def item_count(scores: Scores) -> int:
    counts = {len(v) for v in scores.values()}
    if len(counts) != 1:
        raise ValueError(f"per-item score arrays have different item counts: {sorted(counts)}")
    return counts.pop()


def observed(statistic: Statistic, scores: Scores) -> float:
    """The statistic on all items."""
    return float(statistic({k: np.asarray(v)[None] for k, v in scores.items()})[0])


def _resampled(statistic: Statistic, scores: Scores, idx: np.ndarray) -> np.ndarray:
    """The statistic on each row of resample indices idx [R, N], chunked to bound memory."""
    width = max(int(np.prod(np.asarray(v).shape[1:], dtype=np.int64)) for v in scores.values())
    chunk = max(1, _CHUNK_ELEMENTS // max(1, idx.shape[1] * width))
    out = [
        statistic({k: np.asarray(v)[idx[start : start + chunk]] for k, v in scores.items()})
        for start in range(0, len(idx), chunk)
    ]
    return np.concatenate(out)


def interval(statistic: Statistic, scores: Scores, n_resamples: int, confidence: float, seed: int) -> list[float]:
    """Percentile bootstrap interval [low, high] of the statistic; a single item gives [value, value]."""
    n = item_count(scores)
    if n < 2:
        value = observed(statistic, scores) if n else 0.0
        return [value, value]
    idx = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    values = _resampled(statistic, scores, idx)
    tail = (1 - confidence) / 2
    return [float(np.nan_to_num(np.quantile(values, tail))), float(np.nan_to_num(np.quantile(values, 1 - tail)))]


def paired_difference(
    statistic: Statistic, scores_a: Scores, scores_b: Scores, n_resamples: int, confidence: float, seed: int
) -> dict:
    """Statistic(A) - statistic(B) on the same items, resampled together (same indices for both).

    Returns {"difference": observed A - B, "ci": [low, high], "p_b_at_least_a": share of resamples where
    B >= A (a one-sided p-value for "A is better")}, the keys `paired.paired_bootstrap_macro_f1` returns.
    """
    n = item_count(scores_a)
    if item_count(scores_b) != n:
        raise ValueError(f"paired comparison needs the same items: {n} vs {item_count(scores_b)}")
    difference = observed(statistic, scores_a) - observed(statistic, scores_b) if n else 0.0
    if n < 2:
        return {"difference": difference, "ci": [difference, difference], "p_b_at_least_a": float(difference <= 0)}
    idx = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    diffs = _resampled(statistic, scores_a, idx) - _resampled(statistic, scores_b, idx)
    tail = (1 - confidence) / 2
    return {
        "difference": float(difference),
        "ci": [float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))],
        "p_b_at_least_a": float(np.mean(diffs <= 0)),
    }


def take(scores: Scores, index: np.ndarray) -> Scores:
    """The per-item scores of a subset of items (an index array or a boolean mask), e.g. the clean test set."""
    return {k: np.asarray(v)[index] for k, v in scores.items()}
