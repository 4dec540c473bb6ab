"""Across trials, after a run: learning curves per candidate and paired comparisons between candidates.

Pure numpy/scipy over stored results and saved test predictions (no torch), so it can be recomputed
anywhere. Pairs are compared only on identical test items (same training size and seed).
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np

from bakeoff import tasks
from bakeoff.errors import BakeoffError
from bakeoff.evaluation.appetite import appetite
from bakeoff.evaluation.judge import Judge, judge_candidates
from bakeoff.evaluation.paired import compare, compare_item_scores
from bakeoff.run_folder import RunFolder, TrialFolder


def learning_curves(trials: list[dict], share_of_best: float, target: float | None, metric: str = "macro_f1") -> dict:
    """Per candidate, the test `metric` by training size: curve rows hold it as `quality`, and each
    candidate's record names the metric in `metric`."""
    by_candidate: dict[str, list] = {}
    for trial in trials:
        if trial["status"] != "done" or not trial["train_size"]:
            continue
        test = trial["result"]["metrics"]["test"]
        by_candidate.setdefault(trial["candidate"], []).append(
            (trial["train_size"], trial["seed"], test[metric], test[f"{metric}_ci"])
        )
    return {name: appetite(points, share_of_best, target) | {"metric": metric} for name, points in by_candidate.items()}


def _trial_files(run_dir: Path, trial: dict) -> TrialFolder:
    return RunFolder(run_dir).trial(trial["trial_id"])


def _groups(trials: list[dict]) -> dict[tuple[int, int], list[dict]]:
    """Finished trials by (training size, seed): those were scored on the same test items."""
    groups: dict[tuple[int, int], list[dict]] = {}
    for trial in trials:
        if trial["status"] == "done":
            groups.setdefault((trial["train_size"], trial["seed"]), []).append(trial)
    return groups


def paired_item_comparisons(
    trials: list[dict], run_dir: Path, task_type: str, n_resamples: int, confidence: float
) -> list[dict]:
    """Extraction / generation: paired bootstrap on the per-item scores each trial saved (item_scores.npz)."""
    out = []
    for (size, seed), members in sorted(_groups(trials).items()):
        loaded = {}
        for t in members:
            path = _trial_files(run_dir, t).item_scores
            if path.exists():
                with np.load(path) as stored:
                    loaded[t["candidate"]] = {k: stored[k] for k in stored.files}
        for a, b in combinations(sorted(loaded), 2):
            try:
                result = compare_item_scores(task_type, loaded[a], loaded[b], n_resamples, confidence, seed)
            except ValueError:
                continue  # different test items: not comparable pairwise
            out.append({"train_size": size, "seed": seed, "a": a, "b": b, **result})
    return out


def paired_comparisons(trials: list[dict], run_dir: Path, n_resamples: int, confidence: float) -> list[dict]:
    done = [t for t in trials if t["status"] == "done"]
    groups: dict[tuple[int, int], list[dict]] = {}
    for trial in done:
        groups.setdefault((trial["train_size"], trial["seed"]), []).append(trial)
    out = []
    for (size, seed), members in sorted(groups.items()):
        loaded = {t["candidate"]: np.load(_trial_files(run_dir, t).predictions) for t in members}
        for a, b in combinations(sorted(loaded), 2):
            if not np.array_equal(loaded[a]["y_true"], loaded[b]["y_true"]):
                continue  # different test items: not comparable pairwise
            result = compare(loaded[a]["y_true"], loaded[a]["probs"], loaded[b]["probs"], n_resamples, confidence, seed)
            out.append({"train_size": size, "seed": seed, "a": a, "b": b, **result})
    return out


def analyse(
    trials: list[dict], run_dir: Path, spec: dict, judge: Judge | None = None, judge_note: str | None = None
) -> dict:
    """The quality computed across trials (learning curves, paired comparisons, the judge); `spec` is the run
    spec as JSON. `judge`: the LLM judge to run when `evaluation.judge` is set (the runner passes it; `report`
    rebuilding an old analysis passes none). `judge_note`: who judges (recorded as `judged_by`), or, with no
    judge, why not (`skipped`). The GPU estimates beside it are efficiency's (`run_analysis.py` joins them)."""
    from bakeoff.config import EvaluationSpec

    # Validated with defaults, so run folders written before a setting existed still rebuild.
    evaluation = EvaluationSpec.model_validate(spec.get("evaluation") or {}).model_dump(mode="json")
    task_type = (spec.get("task") or {}).get("type") or "classification"
    stats = (evaluation["bootstrap_samples"], evaluation["confidence"])
    analysis = {
        "task_type": task_type,
        "main_metric": tasks.main_metric(task_type),
        "learning_curves": learning_curves(
            trials,
            evaluation["appetite_share_of_best"],
            evaluation.get("appetite_target_macro_f1"),
            tasks.main_metric(task_type),
        ),
        "paired_comparisons": (
            paired_comparisons(trials, run_dir, *stats)
            if task_type == "classification"
            else paired_item_comparisons(trials, run_dir, task_type, *stats)
        ),
    }
    if evaluation.get("judge"):
        analysis["judge"] = judge_run(trials, run_dir, evaluation, judge, judge_note)
    return analysis


def judge_run(
    trials: list[dict], run_dir: Path, evaluation: dict, judge: Judge | None, note: str | None = None
) -> dict:
    """Win-rate of each candidate against `evaluation.judge.baseline`, per (training size, seed), on the first
    `max_items` test items of each trial's predictions.jsonl (text, target, output). Never raises for the
    judge itself: a failed or missing judge is recorded, so the trials' analysis is still stored."""
    settings = evaluation["judge"]
    baseline = settings["baseline"]
    if judge is None:
        return {"baseline": baseline, "records": [], "skipped": note or "no judge was passed to the analysis"}
    done = {"baseline": baseline, "judged_by": note} if note else {"baseline": baseline}
    records = []
    try:
        for (size, seed), members in sorted(_groups(trials).items()):
            written = {t["candidate"]: _predictions(_trial_files(run_dir, t), settings["max_items"]) for t in members}
            written = {name: rows for name, rows in written.items() if rows}
            if baseline not in written:
                continue
            texts = [row["text"] for row in written[baseline]]
            references = [row["target"] for row in written[baseline]]
            same_items = {
                n: [r["output"] for r in rows] for n, rows in written.items() if [r["text"] for r in rows] == texts
            }
            by_candidate = judge_candidates(
                judge,
                texts,
                same_items,
                baseline,
                references,
                evaluation["bootstrap_samples"],
                evaluation["confidence"],
                seed,
            )
            records += [{"train_size": size, "seed": seed, "candidate": n, **r} for n, r in by_candidate.items()]
    except BakeoffError as err:
        return done | {"records": records, "error": str(err)}
    return done | {"records": records}


def _predictions(trial: TrialFolder, limit: int) -> list[dict]:
    path = trial.outputs
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line, _ in zip(handle, range(limit))]
