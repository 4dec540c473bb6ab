"""Across trials, after a run: learning curves per candidate and paired comparisons between candidates.

Pure numpy/scipy over stored results and saved test predictions (no torch), so it can be recomputed
anywhere. Pairs are compared only on identical test items (same training size and seed).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from bakeoff.evaluation.appetite import appetite
from bakeoff.evaluation.paired import compare


def learning_curves(trials: list[dict], share_of_best: float, target: float | None) -> dict:
    by_candidate: dict[str, list] = {}
    for trial in trials:
        if trial["status"] != "done" or not trial["train_size"]:
            continue
        test = trial["result"]["metrics"]["test"]
        by_candidate.setdefault(trial["candidate"], []).append((trial["train_size"], trial["seed"], test["macro_f1"], test["macro_f1_ci"]))
    return {name: appetite(points, share_of_best, target) for name, points in by_candidate.items()}


def paired_comparisons(trials: list[dict], run_dir: Path, n_resamples: int, confidence: float) -> list[dict]:
    done = [t for t in trials if t["status"] == "done"]
    groups: dict[tuple[int, int], list[dict]] = {}
    for trial in done:
        groups.setdefault((trial["train_size"], trial["seed"]), []).append(trial)
    out = []
    for (size, seed), members in sorted(groups.items()):
        loaded = {t["candidate"]: np.load(Path(run_dir) / "trials" / t["trial_id"].replace("/", "__") / "predictions.npz") for t in members}
        for a, b in combinations(sorted(loaded), 2):
            if not np.array_equal(loaded[a]["y_true"], loaded[b]["y_true"]):
                continue  # different test items: not comparable pairwise
            result = compare(loaded[a]["y_true"], loaded[a]["probs"], loaded[b]["probs"], n_resamples, confidence, seed)
            out.append({"train_size": size, "seed": seed, "a": a, "b": b, **result})
    return out


def analyse(trials: list[dict], run_dir: Path, spec_evaluation: dict) -> dict:
    return {
        "learning_curves": learning_curves(trials, spec_evaluation["appetite_share_of_best"], spec_evaluation.get("appetite_target_macro_f1")),
        "paired_comparisons": paired_comparisons(trials, run_dir, spec_evaluation["bootstrap_samples"], spec_evaluation["confidence"]),
    }
