"""Data appetite: how many labeled examples does each candidate need?

Per candidate, the task's main metric on the test set (macro-F1 for classification) at each training size
(mean over seeds, with the spread of seeds and the mean bootstrap CI) forms a learning curve, its values
under `quality`. A saturating power law f(n) = a - b * n^(-c) is fitted when there are at least 3 sizes
(scipy curve_fit, bounded). "Examples needed" to reach a share of the candidate's best, or an absolute
target, is read by interpolating the measured points; beyond the largest measured size we extrapolate along
the fitted curve only up to 2x that size, and otherwise say "not reached" instead of guessing.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

EXTRAPOLATION_LIMIT = 2.0  # at most this many times the largest measured size


def _power_law(n, a, b, c):
    return a - b * np.power(n, -c)


def learning_curve(points: list[tuple[int, int, float, list[float]]]) -> list[dict]:
    """points: (train_size, seed, quality, ci), quality in the task's main metric. Returns one row per size:
    mean, seed spread, mean CI."""
    by_size: dict[int, list[tuple[float, list[float]]]] = {}
    for size, _seed, value, ci in points:
        by_size.setdefault(size, []).append((value, ci))
    rows = []
    for size in sorted(by_size):
        values = np.array([v for v, _ in by_size[size]])
        cis = np.array([ci for _, ci in by_size[size]])
        rows.append(
            {
                "train_size": size,
                "seeds": len(values),
                "quality": float(values.mean()),
                "seed_min": float(values.min()),
                "seed_max": float(values.max()),
                "ci": [float(cis[:, 0].mean()), float(cis[:, 1].mean())],
            }
        )
    return rows


def fit(curve: list[dict]) -> dict | None:
    """Saturating power-law fit, or None with fewer than 3 sizes or when it does not converge."""
    if len(curve) < 3:
        return None
    sizes = np.array([r["train_size"] for r in curve], dtype=float)
    values = np.array([r["quality"] for r in curve])
    try:
        with warnings.catch_warnings():  # 3 points for 3 parameters: no covariance, which we do not use
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(
                _power_law,
                sizes,
                values,
                p0=(min(1.0, values.max() + 0.05), 1.0, 0.5),
                bounds=([0, 0, 0.01], [1.0, 100.0, 3.0]),
                maxfev=20000,
            )
    except (RuntimeError, ValueError):
        return None
    a, b, c = (float(p) for p in params)
    residual = float(np.sqrt(np.mean((_power_law(sizes, a, b, c) - values) ** 2)))
    return {"form": "a - b * n^-c", "a": a, "b": b, "c": c, "rmse": residual}


def _inverse(fitted: dict | None, target: float) -> float | None:
    """n with f(n) = target on the fitted curve, or None (no fit, or the ceiling is below the target)."""
    if not fitted or fitted["a"] <= target or fitted["b"] <= 0:
        return None
    return float((fitted["b"] / (fitted["a"] - target)) ** (1 / fitted["c"]))


def examples_needed(curve: list[dict], target: float, fitted: dict | None) -> dict:
    """Smallest training size reaching `target` quality: measured, interpolated, extrapolated or not reached."""
    sizes = [r["train_size"] for r in curve]
    values = [r["quality"] for r in curve]
    for i, (size, value) in enumerate(zip(sizes, values)):
        if value >= target:
            if i == 0:
                return {"examples": size, "how": "measured: the smallest size already reaches it"}
            s0, v0 = sizes[i - 1], values[i - 1]
            on_curve = _inverse(fitted, target)
            if on_curve is not None and s0 <= on_curve <= size:
                return {
                    "examples": int(np.ceil(on_curve)),
                    "how": "interpolated on the fitted curve between measured sizes",
                }
            interpolated = s0 + (target - v0) * (size - s0) / (value - v0)
            return {"examples": int(np.ceil(interpolated)), "how": "interpolated linearly between measured sizes"}
    n = _inverse(fitted, target)
    if n is not None:
        if n <= EXTRAPOLATION_LIMIT * sizes[-1]:
            return {
                "examples": int(np.ceil(n)),
                "how": f"extrapolated on the fitted curve (<= {EXTRAPOLATION_LIMIT:g}x largest size)",
            }
    return {"examples": None, "how": f"not reached up to {sizes[-1]} examples"}


def appetite(points: list[tuple[int, int, float, list[float]]], share_of_best: float, target: float | None) -> dict:
    curve = learning_curve(points)
    fitted = fit(curve)
    best = max(r["quality"] for r in curve)
    if len(curve) == 1:  # its best is its only point: reaching a share of it says nothing about appetite
        to_share = {"examples": None, "how": f"trained at one size only ({curve[0]['train_size']}): no curve to read"}
    else:
        to_share = examples_needed(curve, share_of_best * best, fitted)
    report = {
        "curve": curve,
        "fit": fitted,
        "best_quality": best,
        "to_share_of_best": {"share": share_of_best, **to_share},
    }
    if target is not None:
        report["to_target"] = {"target": target, **examples_needed(curve, target, fitted)}
    return report
