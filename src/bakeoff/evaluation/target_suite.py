"""Everything measured about one candidate of an extraction or generation task, from `write(texts) -> outputs`.

The classification suite (`evaluation/suite.py`) works from label probabilities; this one from output
strings, scored by `evaluation/extraction_metrics.py` (record exact match, field F1, valid-output and
hallucination rates) or `evaluation/generation_metrics.py` (chrF, ROUGE-L, length, refusals), every
number with a bootstrap CI. The same evidence as classification where it applies:
- test, its de-duplicated "clean" subset, and the training subset (memorization: train vs test vs clean);
- robustness: perturbed copies of a test subset (the text is perturbed, the target is not), each scored
  against the clean outputs with a paired bootstrap on per-item scores; the built-in task's held-out
  phrasings as their own set;
- out-of-scope items (generation): outputs scored against the fallback reference when there is one, and
  the share the fallback detector flags.
Test outputs and their per-item scores are written to the trial folder (predictions.jsonl, item_scores.npz),
so any number can be recomputed and two candidates compared item by item.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bakeoff import tasks
from bakeoff.config import RunSpec
from bakeoff.data.examples import Examples
from bakeoff.data.splits import stratified_indices
from bakeoff.data.targets import fallback_reference, target_fields
from bakeoff.data.task import TaskData
from bakeoff.evaluation import extraction_metrics, generation_metrics, perturb
from bakeoff.evaluation.item_bootstrap import take
from bakeoff.evaluation.paired import compare_item_scores
from bakeoff.evaluation.suite import OnPhase, out_of_scope_split, perturbed_items, phased
from bakeoff.run_folder import TrialFolder

Write = Callable[[list[str]], list[str]]
PhaseWrite = Callable[[str, list[str]], list[str]]  # (phase name, texts) -> outputs


@dataclass
class TargetSuiteOutput:
    metrics: dict
    outputs: list[str]  # test outputs, in test order
    inference_s: float  # writing time of the main test set
    test_items: int


class _Scorer:
    """Per-item scores and summaries for one task type, with the run's bootstrap settings."""

    def __init__(self, spec: RunSpec, seed: int, tokenizer):
        self.type = spec.task.type
        self.fields = target_fields(spec.task)
        self.tokenizer = tokenizer
        self.stats = (spec.evaluation.bootstrap_samples, spec.evaluation.confidence, seed)

    def items(self, outputs: list[str], examples: Examples, texts: list[str] | None = None) -> dict:
        if self.type == "extraction":
            targets = [json.loads(t) for t in examples.targets]
            return extraction_metrics.extraction_item_scores(outputs, targets, texts or examples.texts, self.fields)
        return generation_metrics.generation_item_scores(outputs, examples.targets, self.tokenizer)

    def summary(self, scores: dict) -> dict:
        if self.type == "extraction":
            return extraction_metrics.extraction_summary(scores, self.fields, *self.stats)
        return generation_metrics.generation_summary(scores, *self.stats)

    def paired(self, a: dict, b: dict) -> dict:
        return compare_item_scores(self.type, a, b, *self.stats)


def run_target_suite(
    write: Write,
    task: TaskData,
    spec: RunSpec,
    train_subset: Examples | None,
    seed: int,
    trial_dir: Path,
    tokenizer=None,
    train_score_note: str | None = None,
    on_phase: OnPhase | None = None,
) -> TargetSuiteOutput:
    """`train_score_note`: why this candidate's training score means nothing (a lookup returns the training
    reply itself); the memorization flag is then n/a (None), with the note, instead of "YES"."""
    evaluation = spec.evaluation
    scorer = _Scorer(spec, seed, tokenizer)
    main = tasks.main_metric(scorer.type)
    written = phased(write, on_phase)
    test_index = stratified_indices(task.test.labels, evaluation.max_test_items, seed=0)
    test = task.test.subset(test_index)
    started = time.perf_counter()
    outputs = written("test", test.texts)
    inference_s = time.perf_counter() - started
    test_scores = scorer.items(outputs, test)
    metrics: dict = {"task_type": scorer.type, "main_metric": main, "test": scorer.summary(test_scores)}

    clean = np.array([not task.test_near_duplicate[i] for i in test_index])
    removed = {"removed_near_duplicates": int((~clean).sum())}
    if clean.any() and not clean.all():
        metrics["test_clean"] = scorer.summary(take(test_scores, clean)) | removed
    else:
        metrics["test_clean"] = metrics["test"] | removed

    if train_subset is not None and len(train_subset) and evaluation.max_train_items > 0:
        seen = train_subset.subset(stratified_indices(train_subset.labels, evaluation.max_train_items, seed=0))
        metrics["train"] = scorer.summary(scorer.items(written("train subset", seen.texts), seen))

    seconds_per_item = inference_s / len(test) if len(test) else 0.0
    metrics["robustness"] = _robustness(written, task, spec, scorer, test, test_scores, seed, seconds_per_item)
    if scorer.type == "generation":
        _, oos_test = out_of_scope_split(task, evaluation.max_out_of_scope_items, seed=0)
        if oos_test:
            fallback = fallback_reference(spec.task)
            metrics["out_of_scope"] = generation_metrics.out_of_scope_generation(
                written("out-of-scope", oos_test),
                [fallback] * len(oos_test) if fallback else None,
                tokenizer,
                None,
                *scorer.stats,
            )
    metrics["memorization"] = _memorization(metrics, main, spec, train_score_note)
    _save(trial_dir, test, outputs, test_scores)
    return TargetSuiteOutput(metrics, outputs, inference_s, len(test))


def _robustness(
    written: PhaseWrite,
    task: TaskData,
    spec: RunSpec,
    scorer: _Scorer,
    test: Examples,
    test_scores: dict,
    seed: int,
    seconds_per_item: float = 0.0,
) -> dict:
    """Perturbed copies of a stratified test subset, sized like classification's (`perturbed_items`: at most
    `max_perturbed_items`, fewer when `perturbation_budget_s` at the test set's writing speed says so)."""
    evaluation = spec.evaluation
    main = tasks.main_metric(scorer.type)
    perturbations = [
        p
        for p in evaluation.resolved_perturbations(spec.task.builtin is not None)
        if tasks.get(scorer.type).keeps_target(p.name)
    ]
    wanted = perturbed_items(evaluation, len(perturbations), seconds_per_item)
    subset = stratified_indices(test.labels, wanted, seed=1)
    items = test.subset(subset)
    clean_scores = take(test_scores, np.asarray(subset, dtype=np.int64))
    clean = scorer.summary(clean_scores)
    report: dict = {
        "items": len(subset),
        "items_wanted": wanted,
        "budget_s": evaluation.perturbation_budget_s,
        "clean": {main: clean[main]},
        "perturbations": {},
        "skipped": {},
    }
    for item in evaluation.resolved_perturbations(spec.task.builtin is not None):
        if not tasks.get(scorer.type).keeps_target(item.name):
            report["skipped"][item.name] = "changes the values the record copies, so the target would not hold"
            continue
        if item.name == "paraphrase":
            if task.paraphrases is None:
                continue
            para = task.paraphrases.subset(stratified_indices(task.paraphrases.labels, wanted, seed=1))
            result = scorer.summary(scorer.items(written("paraphrase", para.texts), para))
            report["paraphrase"] = {
                main: result[main],
                f"{main}_ci": result[f"{main}_ci"],
                "items": result["items"],
                f"{main}_drop": clean[main] - result[main],
                "note": "new tickets in phrasings never used in training (not paired with test items)",
            }
            continue
        perturbed = perturb.apply(item.name, dict(item.params), items.texts, seed)
        scores, changed = _write_changed(written, f"perturbed: {item.name}", scorer, items, perturbed, clean_scores)
        result = scorer.summary(scores)
        paired = scorer.paired(clean_scores, scores)  # clean - perturbed: the drop
        report["perturbations"][item.name] = {
            "params": dict(item.params),
            main: result[main],
            f"{main}_ci": result[f"{main}_ci"],
            f"{main}_drop": paired[main]["difference"],
            f"{main}_drop_ci": paired[main]["ci"],
            "changed_texts": changed,
        }
    values = [p[main] for p in report["perturbations"].values()]
    report[f"mean_perturbed_{main}"] = float(np.mean(values)) if values else None
    report["worst_perturbation"] = (
        min(report["perturbations"], key=lambda k: report["perturbations"][k][main]) if values else None
    )
    return report


def _write_changed(
    written: PhaseWrite, phase: str, scorer: _Scorer, items: Examples, perturbed: list[str], clean_scores: dict
):
    """Per-item scores of the perturbed texts, writing only those the perturbation changed; an unchanged
    text keeps its clean scores (same input, same greedy output). Returns the scores and how many changed."""
    changed = perturb.changed(items.texts, perturbed)
    scores = {name: np.array(values, copy=True) for name, values in clean_scores.items()}
    if changed:
        texts = [perturbed[i] for i in changed]
        for name, values in scorer.items(written(phase, texts), items.subset(changed), texts).items():
            scores[name][changed] = values
    return scores, len(changed)


def _memorization(metrics: dict, main: str, spec: RunSpec, train_score_note: str | None = None) -> dict:
    """Near-perfect on seen items, materially worse on perturbed held-out ones, in the task's main metric (the
    thresholds are classification's `memorization_train_accuracy` and `memorization_drop`, read on it).
    `flag` is None (n/a) when the training score means nothing for this candidate (`train_score_note` says why)."""
    train = metrics.get("train", {}).get(main)
    test = metrics["test"][main]
    perturbed = metrics["robustness"].get(f"mean_perturbed_{main}")
    held_out = perturbed if perturbed is not None else test
    evaluation = spec.evaluation
    flagged = (
        train is not None
        and train >= evaluation.memorization_train_accuracy
        and train - held_out >= evaluation.memorization_drop
    )
    return {
        "metric": main,
        "train": train,
        "test": test,
        "test_clean": metrics["test_clean"][main],
        "perturbed": perturbed,
        "paraphrase": metrics["robustness"].get("paraphrase", {}).get(main),
        "gap": None if train is None else train - held_out,
        "flag": None if train_score_note else bool(flagged),
        **({"not_applicable": train_score_note} if train_score_note else {}),
    }


def _save(trial_dir: Path, test: Examples, outputs: list[str], scores: dict) -> None:
    """predictions.jsonl (text, target, output per test item) and item_scores.npz, each written atomically."""
    files = TrialFolder(Path(trial_dir))
    files.path.mkdir(parents=True, exist_ok=True)
    partial = files.path / "predictions.partial.jsonl"
    with open(partial, "w", encoding="utf-8") as handle:
        for text, target, output in zip(test.texts, test.targets, outputs):
            handle.write(json.dumps({"text": text, "target": target, "output": output}, ensure_ascii=False) + "\n")
    os.replace(partial, files.outputs)
    partial = files.path / "item_scores.partial.npz"
    np.savez_compressed(partial, **{k: np.asarray(v) for k, v in scores.items()})
    os.replace(partial, files.item_scores)
