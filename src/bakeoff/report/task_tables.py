"""The task's own metrics for extraction and generation runs: quality and robustness rows, judge lines.

Classification runs keep `summary.rows` / `summary.robustness_rows`; these take their place when
`task.type` is extraction or generation. Pure: no torch, reads stored results only. Every percentage is
on the held-out test set with its percentile-bootstrap interval; which direction is better is stated in
the notes under each table (`QUALITY_NOTES`).
"""

from __future__ import annotations

from bakeoff import tasks
from bakeoff.results import Stat, TrialRecord

QUALITY_NOTES = {
    "extraction": "`exact %`: records whose every field equals the target (the main metric). `field F1`: "
    "field values pooled over fields. `valid %`: outputs that parse as one JSON object with exactly the "
    "declared keys. `halluc. %`: predicted values not found in the text (lower is better). Values are "
    "compared after case-folding, whitespace and surrounding punctuation/quote stripping "
    "(`evaluation/extraction_metrics.py`). Higher is better unless said.",
    "generation": "`chrF` (sacrebleu, corpus level, 0-100) is the main metric; `ROUGE-L` is the mean "
    "LCS F-measure (rouge-score); both higher is better. `words`: mean output length. `refusal %`: outputs "
    "the refusal detector flags (on in-scope items, lower is better). `judge win %`: the LLM judge's "
    "position-swapped win-rate against its baseline (50 = as good).",
}


# Cell formatters, shared with report/summary.py.
def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def with_ci(stat: Stat | None) -> str:
    """`93.0 [90.0, 96.0]`: a statistic and its interval, as percentages."""
    if stat is None:
        return "-"
    return f"{100 * stat.value:.1f} [{100 * stat.ci_low:.1f}, {100 * stat.ci_high:.1f}]"


def score(scores, name: str) -> float | None:
    """A split's statistic (`metrics.test.chrf`), as a number, or None when the split or the metric is absent."""
    stat = None if scores is None else getattr(scores, name)
    return None if stat is None else stat.value


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def status_text(trial: TrialRecord) -> str:
    return trial.status if trial.status != "failed" else f"failed: {trial.error or ''}"


def _judge_records(analysis: dict | None) -> dict[tuple[str, int, int], dict]:
    records = ((analysis or {}).get("judge") or {}).get("records") or []
    return {(r["candidate"], r["train_size"], r["seed"]): r for r in records}


def quality_rows(trials: list[TrialRecord], kind: str, analysis: dict | None = None) -> list[dict[str, str]]:
    """One display row per trial for an extraction or generation run."""
    judged = _judge_records(analysis)
    baseline = ((analysis or {}).get("judge") or {}).get("baseline")
    out = []
    for trial in trials:
        metrics, timings = trial.metrics, trial.timings
        test, train = (metrics.test, metrics.train) if metrics else (None, None)
        row = {
            "candidate": trial.candidate,
            "method": trial.method,
            "train n": str(trial.train_size) if trial.train_size else "0",
            "seed": str(trial.seed),
        }
        if kind == "extraction":
            row |= {
                "exact % [95% CI]": with_ci(test and test.record_exact_match),
                "field F1 % [95% CI]": with_ci(test and test.field_f1),
                "valid %": pct(score(test, "valid_output_rate")),
                "halluc. %": pct(score(test, "hallucination_rate")),
                "train exact %": pct(score(train, "record_exact_match")),
            }
        else:
            record = judged.get((trial.candidate, trial.train_size, trial.seed))
            row |= {
                "chrF [95% CI]": with_ci(test and test.chrf),
                "ROUGE-L [95% CI]": with_ci(test and test.rouge_l),
                "words": number(score(test, "output_words_mean")),
                "refusal %": pct(score(test, "refusal_rate")),
                "judge win % [95% CI]": with_ci(
                    Stat(value=record["win_rate"], ci_low=record["win_rate_ci"][0], ci_high=record["win_rate_ci"][1])
                )
                if record
                else ("50 (baseline)" if baseline and trial.candidate == baseline else "-"),
                "train chrF": pct(score(train, "chrf")),
                "decode tok/s": number(timings and timings.decode_tokens_per_s),
                "TTFT ms p50": number(timings and timings.ttft_ms_p50),
            }
        row |= {
            "fine-tune s": number(timings and timings.fine_tune_s),
            "infer items/s": number(timings and timings.inference_items_per_s),
            "peak MB": number(timings and timings.peak_memory_mb, 0),
            "status": status_text(trial),
        }
        out.append(row)
    return out


def robustness_rows(trials: list[TrialRecord], kind: str) -> list[dict[str, str]]:
    """Memorization, perturbations and out-of-scope behaviour in the task's main metric, per finished trial."""
    main = tasks.main_metric(kind)
    out = []
    for trial in trials:
        metrics = trial.metrics
        if not trial.done or metrics is None:
            continue
        robustness = metrics.robustness or {}
        oos = metrics.out_of_scope or {}
        worst = robustness.get("worst_perturbation")
        mean_perturbed = robustness.get(f"mean_perturbed_{main}")
        memorization = metrics.memorization or {}
        row = {
            "candidate": trial.candidate,
            "train n": str(trial.train_size),
            "train": pct(score(metrics.train, main)),
            "test": pct(score(metrics.test, main)),
            "clean test": pct(score(metrics.test_clean, main)),
            "perturbed (worst)": "-"
            if mean_perturbed is None
            else f"{pct(mean_perturbed)} ({worst} {pct(robustness['perturbations'][worst][main])})",
            "paraphrase": pct((robustness.get("paraphrase") or {}).get(main)),
        }
        if kind == "generation":
            row |= {
                "OOS fallback %": pct(oos.get("fallback_detection_rate")),
                "OOS chrF vs fallback": pct(oos.get("chrf"))
                if oos.get("scored_against") == "fallback_reference"
                else "-",
            }
        row["memorized?"] = memorized_cell(memorization)
        out.append(row)
    return out


def memorized_cell(memorization: dict | None) -> str:
    """The `memorized?` cell: YES with its gap, no, n/a (a training score that means nothing), or - (no score)."""
    memorization = memorization or {}
    if memorization.get("not_applicable"):
        return "n/a"
    flag = memorization.get("flag")
    return f"YES (gap {pct(memorization.get('gap'))})" if flag else ("no" if flag is not None else "-")


def not_applicable_lines(trials: list[TrialRecord]) -> list[str]:
    """Why a candidate's `memorized?` reads n/a: one line per candidate whose training score means nothing."""
    reasons: dict[str, str] = {}
    for trial in trials:
        note = ((trial.metrics.memorization if trial.metrics else None) or {}).get("not_applicable")
        if trial.done and note:
            reasons.setdefault(trial.candidate, note)
    return [f"`memorized?` is n/a for {name}: {note}." for name, note in sorted(reasons.items())]


ROBUSTNESS_NOTE = (
    "All in the task's main metric ({label}, %). `clean test`: test items that are neither exact nor near "
    "duplicates of training items. `perturbed`: mean over perturbations of a test subset (the text is perturbed, "
    "the target is not; worst in brackets). `OOS fallback %`: out-of-scope items whose output declines or "
    "redirects (refusal detector; higher is better). `OOS chrF vs fallback`: against the fallback reference, "
    "when one is given. `memorized?`: near-perfect on training items, materially worse on perturbed held-out ones."
)


def judge_lines(analysis: dict | None) -> list[str]:
    judge = (analysis or {}).get("judge") or {}
    lines = [f"judged by {judge['judged_by']}"] if judge.get("judged_by") else []
    for r in judge.get("records") or []:
        low, high = r["win_rate_ci"]
        bias = r.get("first_position_rate")
        lines.append(
            f"n={r['train_size']} seed {r['seed']}: {r['candidate']} vs {judge['baseline']}: win-rate "
            f"{100 * r['win_rate']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] over {r['items']} items "
            f"({r['wins']} wins, {r['ties']} ties, {r['losses']} losses; both orders agree on "
            f"{100 * r['position_consistency']:.0f}%"
            + (f", first position picked {100 * bias:.0f}% of decided verdicts)" if bias is not None else ")")
        )
    for key in ("skipped", "error"):
        if judge.get(key):
            lines.append(f"judge {key}: {judge[key]}")
    return lines
