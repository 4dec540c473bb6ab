"""Writing outputs with an LLM: batched `generate` (greedy or sampled), optionally constrained to the
extraction record's JSON grammar, and the decode speed a user would see (time to first token, tokens/s).

Prompts are left-padded so every row's next token sits at the same position; batches are length-sorted
(less padding) and outputs are returned in the caller's order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from transformers import LogitsProcessorList
from transformers.generation.streamers import BaseStreamer

from bakeoff.config import DecodingSpec
from bakeoff.evaluation.json_constraint import GreedyRecordProcessor, RecordGrammar
from bakeoff.models.padding import left_pad

# Timed items a latency measurement keeps under `evaluation.latency_budget_s`, however slow the model: decode
# speed here and label scoring's latency (`efficiency/latency.py`, which reads it from this lower layer).
MIN_REPEATS = 3


@dataclass(frozen=True)
class Decoder:
    """One model's way of writing: its tokenizer, settings, and the grammar (extraction) if constrained."""

    model: object
    tokenizer: object
    settings: DecodingSpec
    grammar: RecordGrammar | None  # None: unconstrained
    token_texts: list[str | None] | None  # vocabulary texts for the grammar (json_constraint.token_texts)
    seed: int = 0


@dataclass
class Decoded:
    texts: list[str]
    new_tokens: list[int]  # tokens written per item (EOS included when written)
    seconds: float


@torch.no_grad()
def decode(decoder: Decoder, prompts: list[list[int]], on_batch=None) -> Decoded:
    """Outputs for `prompts` (token ids), in order."""
    settings = decoder.settings
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    texts: list[str] = [""] * len(prompts)
    counts: list[int] = [0] * len(prompts)
    started = time.perf_counter()
    for start in range(0, len(order), settings.batch_size):
        chunk = order[start : start + settings.batch_size]
        new = _generate(decoder, [prompts[i] for i in chunk])
        for i, ids in zip(chunk, new):
            counts[i] = len(ids)
            texts[i] = decoder.tokenizer.decode(ids, skip_special_tokens=True).strip()
        if on_batch is not None:
            on_batch(len(chunk))
    return Decoded(texts, counts, time.perf_counter() - started)


def _generate(decoder: Decoder, prompts: list[list[int]], streamer=None) -> list[list[int]]:
    tokenizer, settings = decoder.tokenizer, decoder.settings
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids, mask, _ = left_pad(prompts, pad_id)
    device = next(decoder.model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    processors = LogitsProcessorList()
    if decoder.grammar is not None:
        processors.append(
            GreedyRecordProcessor(decoder.grammar, decoder.token_texts, tokenizer.eos_token_id, ids.shape[1])
        )
    sample = settings.strategy == "sample" and decoder.grammar is None
    if sample:
        torch.manual_seed(settings.seed + decoder.seed)
    out = decoder.model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=settings.max_new_tokens,
        do_sample=sample,
        temperature=settings.temperature if sample else None,
        top_p=settings.top_p if sample else None,
        top_k=None,
        logits_processor=processors,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad_id,
        streamer=streamer,
    )
    result = []
    for row in out[:, ids.shape[1] :].tolist():
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id) + 1]
        result.append(row)
    return result


class _Clock(BaseStreamer):
    """Timestamps each `put` from generate(): the prompt first, then one call per new token (batch 1)."""

    def __init__(self):
        self.times: list[float] = []

    def put(self, value):
        self.times.append(time.perf_counter())

    def end(self):
        pass


def decode_speed(decoder: Decoder, prompts: list[list[int]], repeats: int, budget_s: float | None = None) -> dict:
    """Batch-1 decoding of up to `repeats` prompts (after one warm-up): time to first token and decode
    tokens/s (tokens after the first over the time after it), medians and p95, and whole-output latency.
    With `budget_s` (`evaluation.latency_budget_s`) it stops once the timed items took that long, keeping at
    least `MIN_REPEATS`, as label scoring's latency does (`efficiency/latency.py`)."""
    _generate(decoder, prompts[:1])  # warm-up: first-call allocations and thread start-up
    first_ms, rates, total_ms = [], [], []
    for prompt in prompts[:repeats]:
        if budget_s is not None and len(total_ms) >= MIN_REPEATS and sum(total_ms) >= 1000 * budget_s:
            break
        clock = _Clock()
        started = time.perf_counter()
        _generate(decoder, [prompt], streamer=clock)
        ended = time.perf_counter()
        if len(clock.times) < 2:
            continue
        first_ms.append((clock.times[1] - started) * 1000)
        total_ms.append((ended - started) * 1000)
        later = len(clock.times) - 2
        if later > 0 and clock.times[-1] > clock.times[1]:
            rates.append(later / (clock.times[-1] - clock.times[1]))
    return {
        "ttft_ms_p50": float(np.median(first_ms)) if first_ms else None,
        "ttft_ms_p95": float(np.percentile(first_ms, 95)) if first_ms else None,
        "decode_tokens_per_s": float(np.median(rates)) if rates else None,
        "latency_ms_p50": float(np.median(total_ms)) if total_ms else None,
        "latency_ms_p95": float(np.percentile(total_ms, 95)) if total_ms else None,
        "latency_items": len(total_ms),
    }
