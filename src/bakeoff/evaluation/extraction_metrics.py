"""Extraction quality: does the model emit the declared JSON record, with the right values, copied from the text?

Every metric here is "higher is better" except `hallucination_rate` (lower is better). Intervals are
percentile bootstrap over test items (`evaluation/item_bootstrap.py`: `evaluation.bootstrap_samples`
resamples at `evaluation.confidence`, seeded by the trial's seed), as for classification.

Signatures (the pipeline calls these; `fields` is `task.fields` in declared order):

    extraction_item_scores(outputs: list[str], targets: list[dict[str, str | None]], texts: list[str],
                           fields: list[str], copy_fields: list[str] | None = None) -> dict[str, np.ndarray]
    extraction_summary(scores, fields, n_resamples=1000, confidence=0.95, seed=0) -> dict
    extraction_quality(outputs, targets, texts, fields, copy_fields=None,
                       n_resamples=1000, confidence=0.95, seed=0) -> dict   # the two above in one call
    parse_record(raw: str, fields: list[str]) -> dict | None
    normalise_value(value) -> str | None

Per-item scores (`extraction_item_scores`; save them beside the predictions for paired comparisons with
`paired.compare_item_scores("extraction", a, b, ...)`, and index them with `item_bootstrap.take` for subsets):
    valid [N] 0/1, exact [N] 0/1, tp / fp / fn [N, F] counts, hallucinated [N], copied [N].

Summary keys (`extraction_summary`), each `X` with `X_ci` = [low, high]:
    items, fields,
    valid_output_rate: share of outputs that parse as one JSON object with exactly the declared keys;
    record_exact_match: share of items whose output is valid and every field equals the target (the task's
        main metric);
    field_precision, field_recall, field_f1: pooled over fields and items (micro);
    field_f1_macro: the mean of per-field F1;
    hallucination_rate: predicted non-null values of the copy fields that are not in the source text, over
        all predicted non-null values of the copy fields (None, CI [0, 0], when there are none);
    copied_values: that denominator;
    per_field: {field: {precision, recall, f1, tp, fp, fn, support (target non-null), predicted}}.

Scoring one field of one item (p = predicted value, t = target value, both normalised):
    p non-null and p == t: TP;  p non-null and p != t: FP (and FN when t is non-null);
    p null and t non-null: FN;  both null: nothing (a correct null counts only towards exact match).
An invalid output predicts null for every field. An empty denominator scores 1.0 when nothing was to be
found and nothing was invented (no FP and no FN), else 0.0.

Normalisation (`normalise_value`), applied to predictions and targets alike: JSON numbers and booleans
become their JSON text; Unicode NFKC, case-folded, runs of whitespace become one space, then leading and
trailing spaces, quotes and sentence punctuation (`"'` and backtick, `.,;:!?`) are stripped; an empty
result is null. Currency signs and number formats are kept: `$12.50` is not `12.50`, nor `12.5`; the
target data fixes the format and the fine-tuned model learns it. A value is "in the text" when its
normalised form is a substring of the source text normalised the same way (without the stripping).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence

import numpy as np

from bakeoff.evaluation.item_bootstrap import Scores, interval, observed

_STRIP = " \"'`.,;:!?"


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def normalise_value(value: object) -> str | None:
    """The comparable form of one field value (see the module docstring); None for null or empty."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return _fold(text).strip(_STRIP) or None


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def parse_record(raw: str, fields: Sequence[str]) -> dict | None:
    """The record in a raw output, or None unless it is one JSON object with exactly the declared keys.

    Surrounding whitespace is allowed; any other text around the object, a duplicated key, a missing or
    an extra key makes the output invalid (constrained decoding never produces them)."""
    try:
        record = json.loads(raw.strip(), object_pairs_hook=_no_duplicate_keys)
    except ValueError:  # json.JSONDecodeError is a ValueError, and so is a duplicate key
        return None
    if not isinstance(record, dict) or set(record) != set(fields):
        return None
    return record


def extraction_item_scores(
    outputs: Sequence[str],
    targets: Sequence[dict],
    texts: Sequence[str],
    fields: Sequence[str],
    copy_fields: Sequence[str] | None = None,
) -> Scores:
    """Per-item counts (keys in the module docstring). `copy_fields`: fields whose values should be copied
    from the text (default: all); only they count towards the hallucination rate."""
    if not (len(outputs) == len(targets) == len(texts)):
        raise ValueError(f"outputs, targets and texts differ in length: {len(outputs)}, {len(targets)}, {len(texts)}")
    fields = list(fields)
    copy = set(fields if copy_fields is None else copy_fields)
    n, f = len(outputs), len(fields)
    scores = {
        "valid": np.zeros(n, dtype=np.int64),
        "exact": np.zeros(n, dtype=np.int64),
        "tp": np.zeros((n, f), dtype=np.int64),
        "fp": np.zeros((n, f), dtype=np.int64),
        "fn": np.zeros((n, f), dtype=np.int64),
        "hallucinated": np.zeros(n, dtype=np.int64),
        "copied": np.zeros(n, dtype=np.int64),
    }
    for i, (raw, target, text) in enumerate(zip(outputs, targets, texts)):
        record = parse_record(raw, fields)
        scores["valid"][i] = record is not None
        source = _fold(text)
        all_equal = record is not None
        for j, field in enumerate(fields):
            predicted = normalise_value((record or {}).get(field))
            truth = normalise_value(target.get(field))
            all_equal = all_equal and predicted == truth
            if predicted is not None:
                hit = predicted == truth
                scores["tp"][i, j] += hit
                scores["fp"][i, j] += not hit
                if field in copy:
                    scores["copied"][i] += 1
                    scores["hallucinated"][i] += predicted not in source
            if truth is not None and predicted != truth:
                scores["fn"][i, j] += 1
        scores["exact"][i] = all_equal
    return scores


def _ratio(numerator: np.ndarray, denominator: np.ndarray, other_errors: np.ndarray) -> np.ndarray:
    """numerator / denominator; where the denominator is 0: 1.0 if there were no other errors, else 0.0."""
    empty = np.where(other_errors == 0, 1.0, 0.0)
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, empty)


def _sums(s: Scores, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return s["tp"].sum(axis=axis), s["fp"].sum(axis=axis), s["fn"].sum(axis=axis)


def _precision(s: Scores) -> np.ndarray:
    tp, fp, fn = _sums(s, (-2, -1))
    return _ratio(tp, tp + fp, fn)


def _recall(s: Scores) -> np.ndarray:
    tp, fp, fn = _sums(s, (-2, -1))
    return _ratio(tp, tp + fn, fp)


def _f1(s: Scores) -> np.ndarray:
    tp, fp, fn = _sums(s, (-2, -1))
    return _ratio(2 * tp, 2 * tp + fp + fn, fp + fn)


def _f1_macro(s: Scores) -> np.ndarray:
    tp, fp, fn = _sums(s, (-2,))  # [R, F]
    return _ratio(2 * tp, 2 * tp + fp + fn, fp + fn).mean(axis=-1)


def _hallucination(s: Scores) -> np.ndarray:
    copied = s["copied"].sum(axis=-1)
    return np.where(copied > 0, s["hallucinated"].sum(axis=-1) / np.where(copied > 0, copied, 1), 0.0)


# Statistics of per-item scores with a leading resample axis ([R, N, ...] -> [R]); the first is the main metric.
STATISTICS = {
    "record_exact_match": lambda s: s["exact"].mean(axis=-1),
    "field_f1": _f1,
    "field_precision": _precision,
    "field_recall": _recall,
    "field_f1_macro": _f1_macro,
    "valid_output_rate": lambda s: s["valid"].mean(axis=-1),
}
COUNTS = ("tp", "fp", "fn")
# The per-item arrays each statistic reads: only those are resampled (the bootstrap is ~5x faster for it).
STATISTIC_INPUTS = {
    "record_exact_match": ("exact",),
    "field_f1": COUNTS,
    "field_precision": COUNTS,
    "field_recall": COUNTS,
    "field_f1_macro": COUNTS,
    "valid_output_rate": ("valid",),
    "hallucination_rate": ("hallucinated", "copied"),
}


def _inputs(scores: Scores, name: str) -> Scores:
    return {k: scores[k] for k in STATISTIC_INPUTS[name]}


def extraction_summary(
    scores: Scores, fields: Sequence[str], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Metrics with CIs from per-item scores (keys in the module docstring)."""
    stats = (n_resamples, confidence, seed)
    n = len(scores["valid"])
    summary: dict = {"items": int(n), "fields": list(fields)}
    for name in ("valid_output_rate", "record_exact_match", "field_precision", "field_recall", "field_f1"):
        statistic, inputs = STATISTICS[name], _inputs(scores, name)
        summary[name] = observed(statistic, inputs) if n else 0.0
        summary[f"{name}_ci"] = interval(statistic, inputs, *stats)
    counts = _inputs(scores, "field_f1_macro")
    summary["field_f1_macro"] = observed(_f1_macro, counts) if n else 0.0
    summary["field_f1_macro_ci"] = interval(_f1_macro, counts, *stats)
    copied = int(scores["copied"].sum())
    summary["copied_values"] = copied
    summary["hallucination_rate"] = float(scores["hallucinated"].sum() / copied) if copied else None
    summary["hallucination_rate_ci"] = (
        interval(_hallucination, _inputs(scores, "hallucination_rate"), *stats) if copied else [0.0, 0.0]
    )
    tp, fp, fn = (scores[k].sum(axis=0) for k in ("tp", "fp", "fn"))
    summary["per_field"] = {
        field: {
            "precision": float(_ratio(tp[j], tp[j] + fp[j], fn[j])),
            "recall": float(_ratio(tp[j], tp[j] + fn[j], fp[j])),
            "f1": float(_ratio(2 * tp[j], 2 * tp[j] + fp[j] + fn[j], fp[j] + fn[j])),
            "tp": int(tp[j]),
            "fp": int(fp[j]),
            "fn": int(fn[j]),
            "support": int(tp[j] + fn[j]),
            "predicted": int(tp[j] + fp[j]),
        }
        for j, field in enumerate(fields)
    }
    return summary


def extraction_quality(
    outputs: Sequence[str],
    targets: Sequence[dict],
    texts: Sequence[str],
    fields: Sequence[str],
    copy_fields: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """`extraction_summary` of `extraction_item_scores`: the metrics record of one test set."""
    scores = extraction_item_scores(outputs, targets, texts, fields, copy_fields)
    return extraction_summary(scores, fields, n_resamples, confidence, seed)
