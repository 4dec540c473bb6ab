"""Calibration: does 90% confidence mean 90% right? ECE, Brier, NLL; temperature scaling.

ECE uses equal-width confidence bins (15 by default) over the top-label confidence. Temperature
scaling divides the label scores by one scalar T fitted on validation data (minimising NLL), which
changes confidence but never the predicted label. All three metrics: lower is better.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> list[dict]:
    """Per confidence bin: count, mean confidence, accuracy (for the reliability diagram)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        out.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(members.sum()),
                "confidence": float(confidence[members].mean()) if members.any() else None,
                "accuracy": float(correct[members].mean()) if members.any() else None,
            }
        )
    return out


def ece(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: sum over bins of (bin share) x |accuracy - confidence|."""
    total = len(y_true)
    return float(
        sum(
            b["count"] / total * abs(b["accuracy"] - b["confidence"])
            for b in reliability_bins(y_true, probs, bins)
            if b["count"]
        )
    )


def brier(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean over items of the squared distance between the probability vector and the one-hot truth."""
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(y_true)), y_true] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def nll(y_true: np.ndarray, probs: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, 1.0))))


def fit_temperature(y_true: np.ndarray, scores: np.ndarray) -> float:
    """T > 0 minimising validation NLL of softmax(scores / T)."""

    def loss(log_t: float) -> float:
        return float(-np.mean(log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(y_true)), y_true]))

    return float(np.exp(minimize_scalar(loss, bounds=(-4, 4), method="bounded").x))


def softmax_t(scores: np.ndarray, temperature: float) -> np.ndarray:
    return np.exp(log_softmax(scores / temperature, axis=1))


def calibration_report(
    y_true: np.ndarray, scores: np.ndarray, val_true: np.ndarray | None, val_scores: np.ndarray | None, bins: int = 15
) -> dict:
    """Metrics before and after temperature scaling (fitted on validation), with diagram data."""
    probs = softmax_t(scores, 1.0)
    report = {
        "ece": ece(y_true, probs, bins),
        "brier": brier(y_true, probs),
        "nll": nll(y_true, probs),
        "reliability": reliability_bins(y_true, probs, bins),
        "bins": bins,
    }
    if val_true is not None and len(val_true) >= 2:
        temperature = fit_temperature(val_true, val_scores)
        scaled = softmax_t(scores, temperature)
        report["temperature"] = temperature
        report["after_scaling"] = {
            "ece": ece(y_true, scaled, bins),
            "brier": brier(y_true, scaled),
            "nll": nll(y_true, scaled),
            "reliability": reliability_bins(y_true, scaled, bins),
        }
    return report
