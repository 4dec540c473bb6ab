"""Everything measured about one fitted candidate, from one `predict` function, LLMs and baselines alike.

`predict(texts) -> (probs [N, K], raw [N, K])`: probabilities over labels, and the raw label scores they
came from (LLM label log-likelihoods, or logistic-regression logits). From it:
- quality on test (and on its de-duplicated "clean" subset), and on the training subset;
- calibration before and after temperature scaling (fitted on validation);
- robustness: each perturbation scored on the same stratified test subset, drop from clean with a
  paired bootstrap CI; the built-in task's held-out phrasings scored as a separate set;
- out-of-scope detection and abstention (threshold chosen on validation);
- the memorization flag: near-perfect on training items, materially worse on perturbed held-out ones.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bakeoff.config import EvaluationSpec
from bakeoff.data.examples import Examples
from bakeoff.data.splits import stratified_indices
from bakeoff.data.task import TaskData
from bakeoff.evaluation import perturb
from bakeoff.evaluation.calibration import calibration_report
from bakeoff.evaluation.metrics import quality
from bakeoff.evaluation.ood import ood_report
from bakeoff.evaluation.paired import compare

Predict = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]
PhasePredict = Callable[[str, list[str]], tuple[np.ndarray, np.ndarray]]  # (phase name, texts) -> predict's answer
OnPhase = Callable[[str, int], None]  # (phase name, items) as a phase starts scoring: for progress lines


def phased(predict: Predict, on_phase: OnPhase | None) -> PhasePredict:
    """`predict` that first says which phase it scores and how many items (progress: "40 of 72 items (test)")."""

    def scored(phase: str, texts: list[str]):
        if on_phase is not None:
            on_phase(phase, len(texts))
        return predict(texts)

    return scored


@dataclass
class SuiteOutput:
    metrics: dict
    test_probs: np.ndarray
    test_raw: np.ndarray
    test_true: np.ndarray
    inference_s: float  # scoring time of the main test set
    test_items: int
    phase_s: dict | None = None  # seconds per evaluation phase: test, train, validation, robustness, out_of_scope
    # The validation items' probabilities [N_val, K] and label ids [N_val]: `decision.costs` chooses each trial's
    # abstention threshold on these, never on test (decision/costs.py).
    val_probs: np.ndarray | None = None
    val_true: np.ndarray | None = None


def label_ids_of(examples: Examples, labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[label] for label in examples.labels], dtype=np.int64)


def out_of_scope_split(task: TaskData, limit: int, seed: int) -> tuple[list[str], list[str]]:
    """(validation, test) halves of at most `limit` out-of-scope items, seeded."""
    items = list(task.out_of_scope)
    random.Random(seed).shuffle(items)
    items = items[:limit]
    half = len(items) // 2
    return items[:half], items[half:]


def run_suite(
    predict: Predict,
    task: TaskData,
    spec: EvaluationSpec,
    train_subset: Examples | None,
    seed: int,
    builtin_task: bool,
    on_phase: OnPhase | None = None,
) -> SuiteOutput:
    labels = task.labels
    score = phased(predict, on_phase)
    stats = (spec.bootstrap_samples, spec.confidence, seed)
    test_index = stratified_indices(task.test.labels, spec.max_test_items, seed=0)
    test = task.test.subset(test_index)
    y_test = label_ids_of(test, labels)
    started = time.perf_counter()
    test_probs, test_raw = score("test", test.texts)
    inference_s = time.perf_counter() - started
    metrics: dict = {"test": quality(y_test, test_probs, labels, *stats)}

    clean = np.array([not task.test_near_duplicate[i] for i in test_index])
    if clean.any() and not clean.all():
        metrics["test_clean"] = quality(y_test[clean], test_probs[clean], labels, *stats) | {
            "removed_near_duplicates": int((~clean).sum())
        }
    else:
        metrics["test_clean"] = metrics["test"] | {"removed_near_duplicates": int((~clean).sum())}

    phase_s = {"test": inference_s}
    mark = time.perf_counter()
    if train_subset is not None and len(train_subset) and spec.max_train_items > 0:
        seen = train_subset.subset(stratified_indices(train_subset.labels, spec.max_train_items, seed=0))
        metrics["train"] = quality(label_ids_of(seen, labels), score("train subset", seen.texts)[0], labels, *stats)

    phase_s["train"], mark = time.perf_counter() - mark, time.perf_counter()
    validation = task.validation.subset(stratified_indices(task.validation.labels, spec.max_validation_items, seed=0))
    y_val = label_ids_of(validation, labels)
    val_probs, val_raw = score("validation", validation.texts)
    metrics["calibration"] = calibration_report(y_test, test_raw, y_val, val_raw, spec.calibration_bins)

    phase_s["validation"], mark = time.perf_counter() - mark, time.perf_counter()
    seconds_per_item = inference_s / max(len(test), 1)
    metrics["robustness"] = _robustness(
        score, task, spec, test, test_probs, y_test, seed, builtin_task, seconds_per_item
    )

    phase_s["robustness"], mark = time.perf_counter() - mark, time.perf_counter()
    oos_val, oos_test = out_of_scope_split(task, spec.max_out_of_scope_items, seed=0)
    if oos_test:
        oos_test_probs, oos_test_raw = score("out-of-scope", oos_test)
        oos_val_probs = score("out-of-scope validation", oos_val)[0] if oos_val else None
        metrics["out_of_scope"] = ood_report(
            y_test, test_probs, test_raw, oos_test_probs, oos_test_raw, val_probs, oos_val_probs
        )

    phase_s["out_of_scope"] = time.perf_counter() - mark
    metrics["memorization"] = _memorization(metrics, spec)
    return SuiteOutput(metrics, test_probs, test_raw, y_test, inference_s, len(test), phase_s, val_probs, y_val)


def _robustness(
    score: PhasePredict,
    task: TaskData,
    spec: EvaluationSpec,
    test: Examples,
    test_probs: np.ndarray,
    y_test: np.ndarray,
    seed: int,
    builtin_task: bool,
    seconds_per_item: float = 0.0,
) -> dict:
    perturbations = spec.resolved_perturbations(builtin_task)
    wanted = perturbed_items(spec, len(perturbations), seconds_per_item)
    subset = stratified_indices(test.labels, wanted, seed=1)
    texts = [test.texts[i] for i in subset]
    y_sub, clean_probs = y_test[subset], test_probs[subset]
    stats = (spec.bootstrap_samples, spec.confidence, seed)
    clean_quality = quality(y_sub, clean_probs, task.labels, *stats)
    report: dict = {
        "items": len(subset),
        "items_wanted": wanted,
        "budget_s": spec.perturbation_budget_s,
        "clean": {"accuracy": clean_quality["accuracy"], "macro_f1": clean_quality["macro_f1"]},
        "perturbations": {},
    }
    for item in perturbations:
        if item.name == "paraphrase":
            if task.paraphrases is None:
                continue
            para = task.paraphrases.subset(stratified_indices(task.paraphrases.labels, wanted, seed=1))
            probs = score("paraphrase", para.texts)[0]
            result = quality(label_ids_of(para, task.labels), probs, task.labels, *stats)
            report["paraphrase"] = {
                "accuracy": result["accuracy"],
                "accuracy_ci": result["accuracy_ci"],
                "accuracy_ci_width": _width(result["accuracy_ci"]),
                "macro_f1": result["macro_f1"],
                "macro_f1_ci": result["macro_f1_ci"],
                "items": result["items"],
                "accuracy_drop": clean_quality["accuracy"] - result["accuracy"],
                "note": "new tickets in phrasings never used in training (not paired with test items)",
            }
            continue
        perturbed = perturb.apply(item.name, dict(item.params), texts, seed)
        probs, changed = _predict_changed(score, f"perturbed: {item.name}", texts, perturbed, clean_probs)
        result = quality(y_sub, probs, task.labels, *stats)
        paired = compare(y_sub, clean_probs, probs, spec.bootstrap_samples, spec.confidence, seed)
        report["perturbations"][item.name] = {
            "params": dict(item.params),
            "accuracy": result["accuracy"],
            "accuracy_ci": result["accuracy_ci"],
            "accuracy_ci_width": _width(result["accuracy_ci"]),
            "macro_f1": result["macro_f1"],
            "macro_f1_ci": result["macro_f1_ci"],
            "accuracy_drop": clean_quality["accuracy"] - result["accuracy"],
            "macro_f1_drop": paired["macro_f1"]["difference"],
            "macro_f1_drop_ci": paired["macro_f1"]["ci"],
            "macro_f1_drop_ci_width": _width(paired["macro_f1"]["ci"]),
            "mcnemar_p": paired["mcnemar"]["p_value"],
            "changed_texts": changed,
        }
    drops = [p["accuracy"] for p in report["perturbations"].values()]
    report["mean_perturbed_accuracy"] = float(np.mean(drops)) if drops else None
    report["worst_perturbation"] = (
        min(report["perturbations"], key=lambda k: report["perturbations"][k]["accuracy"]) if drops else None
    )
    return report


def _predict_changed(score: PhasePredict, phase: str, texts: list[str], perturbed: list[str], clean_probs: np.ndarray):
    """Scores only the texts a perturbation changed; an unchanged text keeps its clean score (same input).

    `entities` leaves a ticket without a name, amount or date as it was: on the built-in tickets about
    60% of them, which were scored again for nothing. Returns the probabilities and how many changed."""
    changed = perturb.changed(texts, perturbed)
    probs = clean_probs.copy()
    if changed:
        probs[changed] = score(phase, [perturbed[i] for i in changed])[0]
    return probs, len(changed)


MIN_PERTURBED_ITEMS = 20  # below this a perturbed accuracy's 95% CI is wider than +-20 points


def perturbed_items(spec: EvaluationSpec, perturbations: int, seconds_per_item: float) -> int:
    """Test items to perturb: `max_perturbed_items`, or fewer when `perturbation_budget_s` at the measured
    scoring speed cannot afford that many for every perturbation (never below MIN_PERTURBED_ITEMS)."""
    if spec.perturbation_budget_s is None or perturbations == 0 or seconds_per_item <= 0:
        return spec.max_perturbed_items
    affordable = int(spec.perturbation_budget_s / (perturbations * seconds_per_item))
    return max(min(spec.max_perturbed_items, affordable), min(MIN_PERTURBED_ITEMS, spec.max_perturbed_items))


def _width(interval) -> float | None:
    return None if interval is None else float(interval[1] - interval[0])


def _memorization(metrics: dict, spec: EvaluationSpec) -> dict:
    """Near-perfect on seen items, materially worse on perturbed held-out ones (perturbed test items; the
    paraphrase set is reported beside it but is a different distribution, so it does not set the flag)."""
    train = metrics.get("train", {}).get("accuracy")
    test = metrics["test"]["accuracy"]
    perturbed = metrics["robustness"].get("mean_perturbed_accuracy")
    held_out = perturbed if perturbed is not None else test
    flagged = (
        train is not None and train >= spec.memorization_train_accuracy and train - held_out >= spec.memorization_drop
    )
    return {
        "train_accuracy": train,
        "test_accuracy": test,
        "perturbed_accuracy": perturbed,
        "paraphrase_accuracy": metrics["robustness"].get("paraphrase", {}).get("accuracy"),
        "gap": None if train is None else train - held_out,
        "flag": bool(flagged),
    }
