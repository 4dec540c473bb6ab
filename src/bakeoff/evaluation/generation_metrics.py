"""Generation quality: how close is the output to the reference, how long is it, does it refuse?

chrF comes from sacrebleu (`CHRF()`: character 6-grams, beta 2, no word n-grams) and ROUGE-L from
rouge-score (LCS F-measure); neither is re-implemented here. Both are on a 0-1 scale like every other
quality metric of bakeoff (sacrebleu's chrF / 100). Higher is better for `chrf` and `rouge_l`; lower is
better for `refusal_rate` and `empty_rate` on in-scope items, higher for `fallback_detection_rate` on
out-of-scope items; lengths are neither. Intervals are percentile bootstrap over items
(`evaluation/item_bootstrap.py`, `evaluation.bootstrap_samples` at `evaluation.confidence`, seeded).

Signatures:

    generation_item_scores(outputs: list[str], references: list[str], tokenizer=None,
                           refusal_patterns: list[str] | None = None) -> dict[str, np.ndarray]
    generation_summary(scores, n_resamples=1000, confidence=0.95, seed=0) -> dict
    generation_quality(outputs, references, tokenizer=None, refusal_patterns=None,
                       n_resamples=1000, confidence=0.95, seed=0) -> dict   # the two above in one call
    out_of_scope_generation(outputs, fallback_references: list[str] | None = None, tokenizer=None,
                            refusal_patterns=None, n_resamples=1000, confidence=0.95, seed=0) -> dict
    is_refusal(text: str, patterns: list[str] | None = None) -> bool

`tokenizer`: anything with `encode(text, add_special_tokens=False) -> list[int]` (a transformers
tokenizer); without it token lengths are None.

Per-item scores (`generation_item_scores`; keep them for `paired.compare_item_scores("generation", ...)`):
    chrf [N] sentence chrF, chrf_stats [N, 18] sacrebleu's n-gram statistics (summed for corpus chrF),
    rouge_l [N], words [N], tokens [N] (-1 without a tokenizer), refusal [N] 0/1, empty [N] 0/1.

Summary keys (`generation_summary`), `X_ci` = [low, high]:
    items,
    chrf, chrf_ci: corpus-level chrF (n-gram statistics summed over items, the sacrebleu corpus score;
        the task's main metric); chrf_sentence_mean: the mean of sentence-level chrF;
    rouge_l, rouge_l_ci: mean sentence ROUGE-L F-measure;
    output_words_mean, output_words_mean_ci, output_tokens_mean, output_tokens_mean_ci (None, [0, 0]
        without a tokenizer);
    refusal_rate, refusal_rate_ci: share of outputs the refusal detector flags; empty_rate: share of
        outputs that are empty or whitespace.
`out_of_scope_generation` adds `scored_against` ("fallback_reference" or "fallback_detector") and
`fallback_detection_rate`, `fallback_detection_rate_ci` (the refusal detector on out-of-scope outputs: the
share that decline or redirect). With fallback references it holds all `generation_summary` keys too
(chrF and ROUGE-L against those references); without, only items, the detection rate, lengths and
empty_rate.

The refusal detector (`REFUSAL_PATTERNS`) is a list of case-insensitive regular expressions for phrases
that decline or redirect: "I can't help with", "unable to", "outside the scope", "as an AI", ... It does not
flag apologies alone ("Sorry for the delay, your refund is on its way" is not a refusal). Pass your own
patterns for another language or house style.

ROUGE-L tokenises with `\\w+` on the case-folded text instead of rouge-score's default, which keeps only
[a-z0-9] and so scores every non-Latin output 0 (see docs/footguns.md); on ASCII text the two agree except
that `_` joins words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from rouge_score.rouge_scorer import RougeScorer
from sacrebleu.metrics import CHRF

from bakeoff.evaluation.item_bootstrap import Scores, interval, observed

REFUSAL_PATTERNS = (
    r"\b(?:i|we)(?:\s+am|'m|\s+are|'re)?\s+(?:not\s+able|unable)\s+to\b",
    r"\b(?:i|we)\s+(?:can't|cannot|can\s+not|won't|am\s+not\s+allowed\s+to)\s+"
    r"(?:help|assist|answer|provide|do\s+that|support|handle)",
    r"\b(?:outside|beyond|out\s+of)\s+(?:of\s+)?(?:my|our|the)\s+(?:scope|remit|area)",
    r"\bnot\s+something\s+(?:i|we)\s+can\s+(?:help|assist)",
    r"\b(?:i|we)\s+(?:don't|do\s+not)\s+(?:handle|cover|deal\s+with|support|have\s+information)",
    r"\bas\s+an\s+ai\b",
    r"\b(?:i|we)\s+(?:don't|do\s+not)\s+(?:know|understand)\b",
)

_CHRF = CHRF()  # chrF (char_order 6, word_order 0, beta 2): sacrebleu's defaults, the usual signature


class _UnicodeWords:
    """rouge-score tokenizer: case-folded `\\w+` runs (its default drops every non-ASCII letter)."""

    def tokenize(self, text: str) -> list[str]:
        return re.findall(r"\w+", text.casefold())


_ROUGE = RougeScorer(["rougeL"], tokenizer=_UnicodeWords())


def is_refusal(text: str, patterns: Sequence[str] | None = None) -> bool:
    """Whether the output declines or redirects (any pattern matches, case-insensitive)."""
    return any(re.search(p, text, flags=re.IGNORECASE) for p in (patterns or REFUSAL_PATTERNS))


def _lengths(outputs: Sequence[str], tokenizer) -> tuple[np.ndarray, np.ndarray]:
    words = np.array([len(o.split()) for o in outputs], dtype=np.int64)
    if tokenizer is None:
        return words, np.full(len(outputs), -1, dtype=np.int64)
    tokens = [len(tokenizer.encode(o, add_special_tokens=False)) for o in outputs]
    return words, np.array(tokens, dtype=np.int64)


def generation_item_scores(
    outputs: Sequence[str],
    references: Sequence[str],
    tokenizer=None,
    refusal_patterns: Sequence[str] | None = None,
) -> Scores:
    """Per-item scores (keys in the module docstring)."""
    if len(outputs) != len(references):
        raise ValueError(f"outputs and references differ in length: {len(outputs)} vs {len(references)}")
    n = len(outputs)
    stats = np.array(_CHRF._extract_corpus_statistics(list(outputs), [list(references)]), dtype=np.int64) if n else None
    width = 3 * (_CHRF.char_order + _CHRF.word_order)
    words, tokens = _lengths(outputs, tokenizer)
    return {
        "chrf": np.array([_CHRF._compute_f_score(row) / 100 for row in stats]) if n else np.zeros(0),
        "chrf_stats": stats if n else np.zeros((0, width), dtype=np.int64),
        "rouge_l": np.array([_ROUGE.score(r, o)["rougeL"].fmeasure for o, r in zip(outputs, references)]),
        "words": words,
        "tokens": tokens,
        "refusal": np.array([is_refusal(o, refusal_patterns) for o in outputs], dtype=np.int64),
        "empty": np.array([not o.strip() for o in outputs], dtype=np.int64),
    }


def _corpus_chrf(s: Scores) -> np.ndarray:
    """Corpus chrF of each resample: sacrebleu's score of the summed n-gram statistics, / 100."""
    summed = s["chrf_stats"].sum(axis=-2)  # [R, 18]
    return np.array([_CHRF._compute_f_score(row.tolist()) / 100 for row in summed])


# Statistics of per-item scores with a leading resample axis ([R, N, ...] -> [R]); the first is the main metric.
STATISTICS = {
    "chrf": _corpus_chrf,
    "rouge_l": lambda s: s["rouge_l"].mean(axis=-1),
}
# The per-item arrays each statistic reads: only those are resampled.
STATISTIC_INPUTS = {"chrf": ("chrf_stats",), "rouge_l": ("rouge_l",)}


def _mean_with_ci(scores: Scores, key: str, stats: tuple) -> tuple[float, list[float]]:
    def statistic(s: Scores) -> np.ndarray:
        return s[key].mean(axis=-1)

    only = {key: scores[key]}  # resample just this array
    return (observed(statistic, only) if len(only[key]) else 0.0), interval(statistic, only, *stats)


def generation_summary(scores: Scores, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Metrics with CIs from per-item scores (keys in the module docstring)."""
    stats = (n_resamples, confidence, seed)
    n = len(scores["chrf"])
    summary: dict = {"items": int(n)}
    chrf_stats = {"chrf_stats": scores["chrf_stats"]}
    summary["chrf"] = observed(_corpus_chrf, chrf_stats) if n else 0.0
    summary["chrf_ci"] = interval(_corpus_chrf, chrf_stats, *stats)
    summary["chrf_sentence_mean"] = float(scores["chrf"].mean()) if n else 0.0
    summary["rouge_l"], summary["rouge_l_ci"] = _mean_with_ci(scores, "rouge_l", stats)
    summary.update(_length_and_refusal(scores, stats))
    return summary


def _length_and_refusal(scores: Scores, stats: tuple) -> dict:
    out: dict = {}
    out["output_words_mean"], out["output_words_mean_ci"] = _mean_with_ci(scores, "words", stats)
    has_tokens = len(scores["tokens"]) and bool(np.all(scores["tokens"] >= 0))
    if has_tokens:
        out["output_tokens_mean"], out["output_tokens_mean_ci"] = _mean_with_ci(scores, "tokens", stats)
    else:
        out["output_tokens_mean"], out["output_tokens_mean_ci"] = None, [0.0, 0.0]
    out["refusal_rate"], out["refusal_rate_ci"] = _mean_with_ci(scores, "refusal", stats)
    out["empty_rate"] = float(scores["empty"].mean()) if len(scores["empty"]) else 0.0
    return out


def generation_quality(
    outputs: Sequence[str],
    references: Sequence[str],
    tokenizer=None,
    refusal_patterns: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """`generation_summary` of `generation_item_scores`: the metrics record of one test set."""
    scores = generation_item_scores(outputs, references, tokenizer, refusal_patterns)
    return generation_summary(scores, n_resamples, confidence, seed)


def out_of_scope_generation(
    outputs: Sequence[str],
    fallback_references: Sequence[str] | None = None,
    tokenizer=None,
    refusal_patterns: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """What the model writes for out-of-scope items: against fallback references when given, and always the
    share the refusal detector flags (`fallback_detection_rate`)."""
    stats = (n_resamples, confidence, seed)
    if fallback_references is not None:
        scores = generation_item_scores(outputs, fallback_references, tokenizer, refusal_patterns)
        report = generation_summary(scores, *stats) | {"scored_against": "fallback_reference"}
    else:
        words, tokens = _lengths(outputs, tokenizer)
        scores = {
            "words": words,
            "tokens": tokens,
            "refusal": np.array([is_refusal(o, refusal_patterns) for o in outputs], dtype=np.int64),
            "empty": np.array([not o.strip() for o in outputs], dtype=np.int64),
        }
        report = {"items": len(outputs), "scored_against": "fallback_detector", **_length_and_refusal(scores, stats)}
        del report["refusal_rate"], report["refusal_rate_ci"]
    report["fallback_detection_rate"], report["fallback_detection_rate_ci"] = _mean_with_ci(scores, "refusal", stats)
    return report
