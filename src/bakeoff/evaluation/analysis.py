"""Across trials, after a run: learning curves per candidate and paired comparisons between candidates.

Pure numpy/scipy over stored results and saved test predictions (no torch), so it can be recomputed
anywhere. Pairs are compared only on identical test items (same training size and seed).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from bakeoff.evaluation.appetite import appetite
from bakeoff.evaluation.paired import compare, compare_item_scores


def learning_curves(trials: list[dict], share_of_best: float, target: float | None) -> dict:
    """Per candidate, the task's main metric by training size (macro-F1; extraction and generation trials
    name theirs in `metrics.main_metric`; curve rows keep the key `macro_f1`, the report says `metric`)."""
    by_candidate: dict[str, list] = {}
    metric = "macro_f1"
    for trial in trials:
        if trial["status"] != "done" or not trial["train_size"]:
            continue
        metrics = trial["result"]["metrics"]
        metric = metrics.get("main_metric", "macro_f1")
        test = metrics["test"]
        by_candidate.setdefault(trial["candidate"], []).append(
            (trial["train_size"], trial["seed"], test[metric], test[f"{metric}_ci"])
        )
    return {name: appetite(points, share_of_best, target) | {"metric": metric} for name, points in by_candidate.items()}


def paired_comparisons(trials: list[dict], run_dir: Path, n_resamples: int, confidence: float) -> list[dict]:
    done = [t for t in trials if t["status"] == "done"]
    groups: dict[tuple[int, int], list[dict]] = {}
    for trial in done:
        groups.setdefault((trial["train_size"], trial["seed"]), []).append(trial)
    out = []
    for (size, seed), members in sorted(groups.items()):
        task_type = members[0]["result"]["metrics"].get("task_type", "classification")
        if task_type != "classification":
            out += _paired_item_scores(task_type, members, run_dir, size, seed, n_resamples, confidence)
            continue
        loaded = {
            t["candidate"]: np.load(Path(run_dir) / "trials" / t["trial_id"].replace("/", "__") / "predictions.npz")
            for t in members
        }
        for a, b in combinations(sorted(loaded), 2):
            if not np.array_equal(loaded[a]["y_true"], loaded[b]["y_true"]):
                continue  # different test items: not comparable pairwise
            result = compare(loaded[a]["y_true"], loaded[a]["probs"], loaded[b]["probs"], n_resamples, confidence, seed)
            out.append({"train_size": size, "seed": seed, "a": a, "b": b, **result})
    return out


def _paired_item_scores(
    task_type: str, members: list[dict], run_dir: Path, size: int, seed: int, n_resamples: int, confidence: float
) -> list[dict]:
    """Extraction / generation: paired bootstrap on the per-item scores each trial saved (item_scores.npz)."""
    loaded = {}
    for t in members:
        path = Path(run_dir) / "trials" / t["trial_id"].replace("/", "__") / "item_scores.npz"
        with np.load(path) as saved:
            loaded[t["candidate"]] = {key: saved[key] for key in saved.files}
    out = []
    for a, b in combinations(sorted(loaded), 2):
        first_a, first_b = next(iter(loaded[a].values())), next(iter(loaded[b].values()))
        if len(first_a) != len(first_b):
            continue  # different test items: not comparable pairwise
        result = compare_item_scores(task_type, loaded[a], loaded[b], n_resamples, confidence, seed)
        out.append({"train_size": size, "seed": seed, "a": a, "b": b, **result})
    return out


def analyse(trials: list[dict], run_dir: Path, spec: dict) -> dict:
    """Everything computed across trials; `spec` is the run spec as JSON."""
    from bakeoff.config import EfficiencySpec, EvaluationSpec

    # Validated with defaults, so run folders written before a setting existed still rebuild.
    evaluation = EvaluationSpec.model_validate(spec.get("evaluation") or {}).model_dump(mode="json")
    efficiency = EfficiencySpec.model_validate(spec.get("efficiency") or {}).model_dump(mode="json")
    return {
        "learning_curves": learning_curves(
            trials, evaluation["appetite_share_of_best"], evaluation.get("appetite_target_macro_f1")
        ),
        "paired_comparisons": paired_comparisons(
            trials, run_dir, evaluation["bootstrap_samples"], evaluation["confidence"]
        ),
        "gpu_estimates": gpu_estimates(trials, efficiency, spec["grid"]["train_sizes"], spec["training"]["epochs"]),
    }


def gpu_estimates(trials: list[dict], efficiency: dict, train_sizes: list[int], epochs: int) -> list[dict]:
    """For each LLM candidate of the run, estimates on each GPU of `efficiency.gpus` (architecture as measured)."""
    from bakeoff.efficiency.estimate import Workload
    from bakeoff.efficiency.introspect import Architecture
    from bakeoff.efficiency.plan import estimate_record

    seen: dict[str, tuple[dict, dict]] = {}
    for trial in trials:
        result = trial.get("result") or {}
        model = result.get("model") or {}
        if trial["status"] == "done" and model.get("kind") == "llm" and result.get("efficiency"):
            seen.setdefault(
                result.get("model_name") or trial["candidate"],
                (model["architecture"], result["efficiency"]["workload"]),
            )
    records = []
    for name, (arch, measured_workload) in seen.items():
        workload = Workload(
            method=efficiency["method"],
            train_examples=efficiency.get("train_examples") or max(train_sizes),
            epochs=epochs,
            prompt_tokens=measured_workload["prompt_tokens"],
            label_tokens=measured_workload["label_tokens"],
            shared_prefix_tokens=measured_workload.get("shared_prefix_tokens", 0),
            num_labels=measured_workload["num_labels"],
        )
        for gpu_key in efficiency["gpus"]:
            records.append(
                estimate_record(
                    name,
                    Architecture(**arch),
                    gpu_key,
                    workload,
                    efficiency["sla_p95_ms"],
                    efficiency["load_items_per_s"],
                    efficiency["usd_per_hour"].get(gpu_key),
                )
            )
    return records
