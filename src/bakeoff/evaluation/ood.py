"""Out-of-scope items: does the model abstain, or fail confidently?

Each item gets an in-scope score (higher = more in-scope) from its label scores: max probability,
margin (top-1 minus top-2 probability), negative entropy, and negative energy (logsumexp of the raw
label scores: for an LLM, the total likelihood it puts on any label at all). Out-of-scope detection is
then a ranking problem: AUROC, AUPR (out-of-scope as the positive class) and FPR at 95% TPR (share of
out-of-scope items accepted when 95% of in-scope items are). A max-probability threshold is chosen on
validation data (best balanced accuracy of accept/abstain) and applied to test.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

CONFIDENT = 0.9


def in_scope_scores(probs: np.ndarray, raw_scores: np.ndarray) -> dict[str, np.ndarray]:
    ordered = np.sort(probs, axis=1)
    entropy = -np.sum(probs * np.log(np.clip(probs, 1e-12, 1)), axis=1)
    return {
        "max_prob": ordered[:, -1],
        "margin": ordered[:, -1] - ordered[:, -2],
        "neg_entropy": -entropy,
        "neg_energy": logsumexp(raw_scores, axis=1),
    }


def detection_metrics(in_score: np.ndarray, out_score: np.ndarray) -> dict:
    """Out-of-scope detection from scores where in-scope items should score higher."""
    labels = np.r_[np.zeros(len(in_score)), np.ones(len(out_score))]  # 1 = out of scope
    suspicion = -np.r_[in_score, out_score]
    fpr, tpr, _ = roc_curve(1 - labels, -suspicion)  # in-scope as positive: TPR = in-scope kept
    fpr_at_95 = float(fpr[np.searchsorted(tpr, 0.95, side="left")])
    return {
        "auroc": float(roc_auc_score(labels, suspicion)),
        "aupr": float(average_precision_score(labels, suspicion)),
        "fpr_at_95_tpr": fpr_at_95,
        "roc": {"fpr": fpr[:: max(1, len(fpr) // 50)].tolist(), "tpr": tpr[:: max(1, len(tpr) // 50)].tolist()},
    }


def choose_threshold(in_confidence: np.ndarray, out_confidence: np.ndarray) -> float:
    """Max-probability threshold with the best balanced accuracy (in-scope kept, out-of-scope refused)."""
    candidates = np.unique(np.r_[in_confidence, out_confidence])
    best, best_score = 0.0, -1.0
    for t in candidates:
        score = 0.5 * (np.mean(in_confidence >= t) + np.mean(out_confidence < t))
        if score > best_score:
            best, best_score = float(t), score
    return best


def risk_coverage(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Selective classification on in-scope items: error rate among the most confident `coverage` share."""
    confidence = probs.max(axis=1)
    wrong = (probs.argmax(axis=1) != y_true)[np.argsort(-confidence, kind="stable")]
    covered = np.arange(1, len(wrong) + 1)
    risk = np.cumsum(wrong) / covered
    step = max(1, len(risk) // 50)
    return {
        "coverage": (covered / len(wrong))[::step].tolist(),
        "risk": risk[::step].tolist(),
        "aurc": float(np.mean(risk)),
    }


def ood_report(
    test_true: np.ndarray,
    test_probs: np.ndarray,
    test_raw: np.ndarray,
    oos_probs: np.ndarray,
    oos_raw: np.ndarray,
    val_in_probs: np.ndarray | None,
    val_oos_probs: np.ndarray | None,
) -> dict:
    inside, outside = in_scope_scores(test_probs, test_raw), in_scope_scores(oos_probs, oos_raw)
    report = {
        "items_in_scope": int(len(test_true)),
        "items_out_of_scope": int(len(oos_probs)),
        "by_score": {name: detection_metrics(inside[name], outside[name]) for name in inside},
        "confidently_wrong_rate": float(np.mean(oos_probs.max(axis=1) >= CONFIDENT)),
        "mean_confidence_in_scope": float(test_probs.max(axis=1).mean()),
        "mean_confidence_out_of_scope": float(oos_probs.max(axis=1).mean()),
        "risk_coverage": risk_coverage(test_true, test_probs),
    }
    if val_in_probs is not None and val_oos_probs is not None and len(val_oos_probs):
        threshold = choose_threshold(val_in_probs.max(axis=1), val_oos_probs.max(axis=1))
        accepted_in = test_probs.max(axis=1) >= threshold
        accepted_out = oos_probs.max(axis=1) >= threshold
        correct = test_probs.argmax(axis=1) == test_true
        report["threshold"] = {
            "max_prob": threshold,
            "abstention_rate": float(
                1 - (accepted_in.sum() + accepted_out.sum()) / (len(accepted_in) + len(accepted_out))
            ),
            "in_scope_abstention_rate": float(1 - accepted_in.mean()),
            "out_of_scope_rejection_rate": float(1 - accepted_out.mean()),
            "in_scope_accuracy_when_answering": float(correct[accepted_in].mean()) if accepted_in.any() else None,
        }
    return report
