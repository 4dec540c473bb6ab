"""Is candidate A really better than B? Paired tests on the same test items.

Paired bootstrap on macro-F1: resample items, recompute both candidates' macro-F1 on the same resample,
report the difference's CI and the share of resamples where B >= A (a one-sided p-value). McNemar's
exact test on accuracy: of the items exactly one of them gets right, is the split unlike 50/50?
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from bakeoff.evaluation.metrics import macro_f1, macro_f1_batched


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    a_right, b_right = pred_a == y_true, pred_b == y_true
    only_a, only_b = int(np.sum(a_right & ~b_right)), int(np.sum(~a_right & b_right))
    p_value = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p_value}


def paired_bootstrap_macro_f1(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_labels: int,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    rng = np.random.default_rng(seed)
    observed = macro_f1(y_true, pred_a, n_labels) - macro_f1(y_true, pred_b, n_labels)
    idx = rng.integers(0, len(y_true), (n_resamples, len(y_true)))  # the same resamples for both candidates
    diffs = macro_f1_batched(y_true[idx], pred_a[idx], n_labels) - macro_f1_batched(y_true[idx], pred_b[idx], n_labels)
    tail = (1 - confidence) / 2
    return {
        "difference": float(observed),
        "ci": [float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))],
        "p_b_at_least_a": float(np.mean(diffs <= 0)),
    }


def compare(
    y_true: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    pred_a, pred_b = probs_a.argmax(axis=1), probs_b.argmax(axis=1)
    boot = paired_bootstrap_macro_f1(y_true, pred_a, pred_b, probs_a.shape[1], n_resamples, confidence, seed)
    return {
        "macro_f1": boot,
        "mcnemar": mcnemar(y_true, pred_a, pred_b),
        "tie": bool(boot["ci"][0] <= 0 <= boot["ci"][1]),
    }


def compare_item_scores(
    task_type: str,
    scores_a: dict[str, np.ndarray],
    scores_b: dict[str, np.ndarray],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    metrics: tuple[str, ...] | None = None,
) -> dict:
    """Paired bootstrap of A - B on the same items for an extraction or generation task, from the per-item
    scores of `extraction_item_scores` / `generation_item_scores`.

    Returns {metric: {"difference", "ci", "p_b_at_least_a"}} for each of `metrics` (default: the task's
    headline pair, extraction record_exact_match and field_f1, generation chrf and rouge_l; any key of the
    module's `STATISTICS` may be asked for), plus "main_metric" (the task's first statistic, always
    included) and "tie" (its CI spans 0), the same shape as `compare` gives for classification.
    """
    from bakeoff.evaluation import extraction_metrics, generation_metrics
    from bakeoff.evaluation.item_bootstrap import paired_difference

    modules = {"extraction": extraction_metrics, "generation": generation_metrics}
    if task_type not in modules:
        raise ValueError(f"no per-item comparison for task type {task_type!r}; use `compare` for classification")
    statistics, inputs = modules[task_type].STATISTICS, modules[task_type].STATISTIC_INPUTS
    main = next(iter(statistics))
    wanted = list(dict.fromkeys([main, *(metrics or list(statistics)[:2])]))
    out: dict = {}
    for name in wanted:
        statistic, keys = statistics[name], inputs[name]  # resample only the arrays the statistic reads
        a, b = {k: scores_a[k] for k in keys}, {k: scores_b[k] for k in keys}
        out[name] = paired_difference(statistic, a, b, n_resamples, confidence, seed)
    out["main_metric"] = main
    out["tie"] = bool(out[main]["ci"][0] <= 0 <= out[main]["ci"][1])
    return out
