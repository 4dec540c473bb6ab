"""Classification quality from predicted probabilities: accuracy, macro-F1, per class, with bootstrap CIs.

Both headline metrics are "higher is better". Intervals are percentile bootstrap over test items
(scipy.stats.bootstrap, paired resampling of truth and prediction), seeded.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    """Mean F1 over the labels that occur in `y_true` or `y_pred` (sklearn's default label set): a label with
    no items and no predictions has no F1, and counting it as 0 would pull the mean down for a test set
    that lacks a rare class (and put the point value outside its own bootstrap interval)."""
    return float(macro_f1_batched(np.asarray(y_true), np.asarray(y_pred), n_labels))


def macro_f1_batched(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 along the last axis, for any leading (resample) axes; same definition as sklearn's
    `f1_score(average="macro", zero_division=0)` with its default labels: those present in each row's true
    or predicted labels. Vectorised with bincount because the bootstrap calls it ~1000 times per metric,
    and sklearn's ~1 ms per call made evaluation slow."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    lead = t.shape[:-1]
    rows = int(np.prod(lead)) if lead else 1
    t, p = t.reshape(rows, -1), p.reshape(rows, -1)
    offset = (np.arange(rows) * n_labels)[:, None]
    size = rows * n_labels
    tp = np.bincount((offset + t)[t == p], minlength=size)
    true_count = np.bincount((offset + t).ravel(), minlength=size)
    pred_count = np.bincount((offset + p).ravel(), minlength=size)
    denominator = true_count + pred_count
    present = (denominator > 0).reshape(rows, n_labels)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(size), where=denominator > 0).reshape(rows, n_labels)
    counted = present.sum(axis=1)
    mean = np.divide(f1.sum(axis=1), counted, out=np.zeros(rows), where=counted > 0)
    return mean.reshape(lead)


def _accuracy_batched(y_true: np.ndarray, y_pred: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y_true == y_pred, axis=axis)


def _interval(
    statistic, y_true: np.ndarray, y_pred: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> list[float]:
    if len(y_true) < 2:
        value = float(statistic(y_true, y_pred))
        return [value, value]
    res = bootstrap(
        (y_true, y_pred),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return [float(np.nan_to_num(low)), float(np.nan_to_num(high))]


def quality(
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: list[str],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Quality of argmax predictions. y_true: [N] class ids; probs: [N, K] rows summing to 1."""
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(axis=1)
    k = len(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(k), zero_division=0
    )
    return {
        "items": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "accuracy_ci": _interval(_accuracy_batched, y_true, y_pred, n_resamples, confidence, seed),
        "macro_f1": macro_f1(y_true, y_pred, k),
        "macro_f1_ci": _interval(
            lambda t, p, axis=-1: macro_f1_batched(t, p, k), y_true, y_pred, n_resamples, confidence, seed
        ),
        "mean_true_label_prob": float(np.mean(probs[np.arange(len(y_true)), y_true])),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=np.arange(k)).tolist(),
    }
