"""LLM-as-judge (optional, off by default): pairwise win-rate of each candidate against a baseline candidate.

For each test item the judge sees the input, the reference when there is one, and two responses, and
answers A, B or TIE. Every pair is judged twice with the positions swapped (candidate first, then
baseline first), so a judge that prefers whichever response comes first cancels out. Per item the
candidate scores 1 for a win, 0.5 for a tie (or an answer that names neither), 0 for a loss, averaged over
the two orders: 0, 0.25, 0.5, 0.75 or 1. The win-rate is the mean over items (0.5 = as good as the
baseline; higher is better) with a percentile bootstrap CI over items (`evaluation/item_bootstrap.py`).

A judge is any `Judge = Callable[[str], str]`: prompt in, answer text out. Two are provided:
- `openai_judge(endpoint, model, api_key=None, timeout_s=60)`: POST {endpoint}/chat/completions of an
  OpenAI-compatible server (temperature 0, max_tokens 8), via httpx;
- a local model (`evaluation.judge.candidate`): `evaluation/local_judge.py` loads that candidate's
  finished trial (`judging_trial`: largest training size, first seed) and generates greedily with it;
  the runner passes the callable in, so this module needs no torch.

Signatures:
    judge_item_scores(judge, texts, candidate_outputs, baseline_outputs, references=None,
                      instruction=JUDGE_INSTRUCTION) -> dict[str, np.ndarray]
        keys: score [N] (0-1), first_verdict [N] and swapped_verdict [N] (1 candidate, 0 baseline, 0.5 tie),
        unparsed [N] (answers naming neither, of the two).
    judge_summary(scores, n_resamples=1000, confidence=0.95, seed=0) -> dict
        keys: items, win_rate, win_rate_ci, wins, ties, losses (items whose score is >, =, < 0.5),
        position_consistency (share of items where both orders agree), first_position_rate (share of
        decided verdicts that picked the response shown first: 0.5 = no order bias), unparsed_verdicts.
    judge_candidates(judge, texts, outputs: dict[str, list[str]], baseline, references=None, ...)
        -> {candidate: judge_summary | {"baseline": baseline}} for every candidate but the baseline.
    judge_from_spec(spec: JudgeSpec, local_judge: Judge | None = None) -> Judge
    judging_trial(trials, candidate) -> dict | None: the stored trial a local judge loads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.evaluation.item_bootstrap import Scores, interval, observed

Judge = Callable[[str], str]

JUDGE_INSTRUCTION = (
    "You are judging two replies to the same customer message. Pick the reply that answers the message "
    "better: correct, helpful, and appropriate (a polite refusal is right when the request is out of scope). "
    "Answer with exactly one word: A, B, or TIE."
)


def judge_prompt(instruction: str, text: str, first: str, second: str, reference: str | None) -> str:
    parts = [instruction, "", f"Message:\n{text}"]
    if reference is not None:
        parts.append(f"Reference reply (for guidance):\n{reference}")
    parts += [f"Reply A:\n{first}", f"Reply B:\n{second}", "", "Better reply (A, B or TIE):"]
    return "\n\n".join(parts)


def parse_verdict(answer: str) -> str | None:
    """ "A", "B" or "TIE" from the judge's answer (its first such word), or None when it names none."""
    match = re.search(r"\b(TIE|A|B)\b", answer.strip().upper())
    return match.group(1) if match else None


def _candidate_points(verdict: str | None, candidate_first: bool) -> float:
    if verdict in (None, "TIE"):
        return 0.5
    return float((verdict == "A") == candidate_first)


def judge_item_scores(
    judge: Judge,
    texts: Sequence[str],
    candidate_outputs: Sequence[str],
    baseline_outputs: Sequence[str],
    references: Sequence[str] | None = None,
    instruction: str = JUDGE_INSTRUCTION,
) -> Scores:
    """Two judge calls per item (both orders); keys in the module docstring."""
    if not (len(texts) == len(candidate_outputs) == len(baseline_outputs)):
        raise ValueError("texts, candidate outputs and baseline outputs differ in length")
    first, swapped, unparsed = [], [], []
    for i, (text, cand, base) in enumerate(zip(texts, candidate_outputs, baseline_outputs)):
        reference = references[i] if references is not None else None
        v1 = parse_verdict(judge(judge_prompt(instruction, text, cand, base, reference)))
        v2 = parse_verdict(judge(judge_prompt(instruction, text, base, cand, reference)))
        first.append(_candidate_points(v1, candidate_first=True))
        swapped.append(_candidate_points(v2, candidate_first=False))
        unparsed.append((v1 is None) + (v2 is None))
    first_a, swapped_a = np.array(first), np.array(swapped)
    return {
        "score": (first_a + swapped_a) / 2,
        "first_verdict": first_a,
        "swapped_verdict": swapped_a,
        "unparsed": np.array(unparsed, dtype=np.int64),
    }


def judge_summary(scores: Scores, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    score = scores["score"]
    n = len(score)

    def mean(s: Scores) -> np.ndarray:
        return s["score"].mean(axis=-1)

    first, swapped = scores["first_verdict"], scores["swapped_verdict"]
    # Verdicts that picked the response shown first: candidate-first order picked the candidate (1), or the
    # swapped order picked the baseline (0). Ties carry no position.
    decided_first = np.r_[first[first != 0.5] == 1, swapped[swapped != 0.5] == 0]
    return {
        "items": int(n),
        "win_rate": observed(mean, {"score": score}) if n else 0.0,
        "win_rate_ci": interval(mean, {"score": score}, n_resamples, confidence, seed),
        "wins": int(np.sum(score > 0.5)),
        "ties": int(np.sum(score == 0.5)),
        "losses": int(np.sum(score < 0.5)),
        "position_consistency": float(np.mean(first == swapped)) if n else 0.0,
        "first_position_rate": float(decided_first.mean()) if len(decided_first) else None,
        "unparsed_verdicts": int(scores["unparsed"].sum()),
    }


def judge_candidates(
    judge: Judge,
    texts: Sequence[str],
    outputs: dict[str, Sequence[str]],
    baseline: str,
    references: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict]:
    """Win-rate of every candidate in `outputs` against `baseline` (which must be one of them)."""
    if baseline not in outputs:
        raise BakeoffError(f"evaluation.judge.baseline `{baseline}` has no outputs; pick one of {sorted(outputs)}")
    return {
        name: judge_summary(
            judge_item_scores(judge, texts, candidate_outputs, outputs[baseline], references),
            n_resamples,
            confidence,
            seed,
        )
        | {"baseline": baseline}
        for name, candidate_outputs in outputs.items()
        if name != baseline
    }


def openai_judge(endpoint: str, model: str, api_key: str | None = None, timeout_s: float = 60.0) -> Judge:
    """A judge on an OpenAI-compatible chat completions endpoint (`endpoint` is the base URL, e.g.
    http://127.0.0.1:8000/v1). Errors name the endpoint and the status, so a wrong URL or key is clear."""
    import httpx

    url = endpoint.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.Client(timeout=timeout_s, headers=headers)

    def judge(prompt: str) -> str:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": 8,
        }
        try:
            response = client.post(url, json=body)
        except httpx.HTTPError as err:
            raise BakeoffError(f"evaluation.judge.endpoint {url}: {err}; check the URL and that it is up") from None
        if response.status_code != 200:
            raise BakeoffError(
                f"evaluation.judge.endpoint {url} answered {response.status_code}: {response.text[:200]}; "
                "check evaluation.judge.model and the API key"
            )
        try:
            return response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise BakeoffError(
                f"evaluation.judge.endpoint {url}: not an OpenAI chat completion: {response.text[:200]}"
            ) from None

    return judge


def judging_trial(trials: list[dict], candidate: str) -> dict | None:
    """The finished trial of `candidate` a local judge loads: the one trained on the most data (first seed),
    the model the decision would pick for that candidate. None when it has no finished trial."""
    done = [t for t in trials if t["candidate"] == candidate and t["status"] == "done"]
    return max(done, key=lambda t: (t["train_size"], -t["seed"])) if done else None


def judge_from_spec(spec, local_judge: Judge | None = None) -> Judge:
    """The judge `evaluation.judge` names: the endpoint, or the local candidate's callable the pipeline built."""
    if spec.endpoint is not None:
        api_key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        if spec.api_key_env and not api_key:
            raise BakeoffError(
                f"evaluation.judge.api_key_env: ${spec.api_key_env} is not set; export it or unset the key"
            )
        return openai_judge(spec.endpoint, spec.model, api_key, spec.timeout_s)
    if local_judge is None:
        raise BakeoffError(f"evaluation.judge.candidate `{spec.candidate}`: no loaded model was passed to judge with")
    return local_judge
