"""Batch-1 label scoring with the prompt's shared prefix run per request (before) or once for all (now).

    python bench/prefix_cache.py [--items 24] [--rounds 3] [--out bench/results/prefix_cache.json]

A server (`bakeoff serve`) scores requests one or a few at a time, and a trial's batch-1 latency measures
that. Every prompt of a format starts with the same tokens: the instruction, and for a zero-shot model
also the chat template's system turn and the label list. Before, each call found its own shared prefix
and ran it: at batch 1 that is the whole prompt (in two passes). Now `cached_prefix` runs the format's
prefix once and every call starts from its cache, as a serving stack with prefix caching does.

SmolLM2-135M (its real weights), built-in tickets, two formats: the fine-tuned one (plain prompt, no label
list, first-token scoring, as the demo's LoRA rows) and the zero-shot one (chat template, label list, full
label scoring as a trie). Per round, each way scores the same items one at a time, in turn, after an
untimed warm-up; the table gives the median per-item time and the speed-up is the median of per-round
ratios. The fp32 matmul peak is measured in the same run. The scores must agree both ways.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from label_trie import matmul_peak_gflops
from report import write_json
from rich.console import Console
from rich.table import Table

from bakeoff.data.ticket_templates import CATEGORIES
from bakeoff.data.tickets import generate_tickets
from bakeoff.evaluation.score import cached_prefix, label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat
from bakeoff.models.sources import resolve_source

INSTRUCTION = "Classify the customer support ticket into one category."
FORMATS = {  # name: (style, label list shown, first-token scoring)
    "fine-tuned (plain, first token)": ("plain", False, True),
    "zero-shot (chat, label list, full)": ("chat", True, False),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/prefix_cache.json"))
    args = parser.parse_args()
    console = Console()
    tickets = generate_tickets(args.items, seed=1)
    texts, labels = tickets.texts, list(CATEGORIES)
    source = resolve_source("smollm2-135m")
    tokenizer, model = load_tokenizer(source, LoadOptions()), load_model(source, LoadOptions())
    pad = tokenizer.pad_token_id
    peaks = [matmul_peak_gflops()]
    results = {}
    for name, (style, show_labels, first_token) in FORMATS.items():
        encoder = PromptEncoder(tokenizer, PromptFormat(INSTRUCTION, labels, show_labels, style=style))
        items = encoder.encode(texts)
        prefix = cached_prefix(model, encoder)

        def one_by_one(cached, items=items, encoder=encoder, first_token=first_token, prefix=prefix):
            started = time.perf_counter()
            scores = [
                label_log_probs(model, [item], encoder.label_ids, pad, 1, None, first_token, prefix if cached else None)
                for item in items
            ]
            return (time.perf_counter() - started) / len(items), np.vstack(scores)

        one_by_one(False), one_by_one(True)  # warm-up
        times, ratios, difference = {"per call": [], "cached": []}, [], 0.0
        for _ in range(args.rounds):
            before, before_scores = one_by_one(False)
            after, after_scores = one_by_one(True)
            times["per call"].append(before)
            times["cached"].append(after)
            ratios.append(before / after)
            difference = max(difference, float(np.abs(before_scores - after_scores).max()))
        prompt = statistics.mean(len(item.prompt_ids) for item in items)
        results[name] = {
            "prompt_tokens_mean": prompt,
            "cached_prefix_tokens": len(prefix.ids) if prefix else 0,
            "ms_per_item": {way: [1000 * t for t in ts] for way, ts in times.items()},
            "ratios": ratios,
            "median_ratio": statistics.median(ratios),
            "max_abs_score_difference": difference,
        }
    peaks.append(matmul_peak_gflops())
    table = Table(title=f"SmolLM2-135M, batch 1, {args.items} built-in tickets, {torch.get_num_threads()} threads")
    for column in ("format", "prompt tokens", "cached prefix", "ms per item: per call", "cached", "speed-up"):
        table.add_column(column)
    for name, result in results.items():
        table.add_row(
            name,
            f"{result['prompt_tokens_mean']:.0f}",
            str(result["cached_prefix_tokens"]),
            f"{statistics.median(result['ms_per_item']['per call']):.0f}",
            f"{statistics.median(result['ms_per_item']['cached']):.0f}",
            f"{result['median_ratio']:.2f}x",
        )
    console.print(table)
    worst = max(r["max_abs_score_difference"] for r in results.values())
    console.print(
        f"max |score difference| {worst:.1e}; fp32 matmul peak {peaks[0]:.0f} before, {peaks[1]:.0f} after GFLOP/s"
    )
    write_json(
        console,
        args.out,
        {"items": args.items, "threads": torch.get_num_threads(), "matmul_peak_gflops": peaks, "formats": results},
        table=table,
    )
    if worst > 1e-3:
        raise SystemExit("scores differ between the two ways: the cached prefix changed the result")


if __name__ == "__main__":
    main()
