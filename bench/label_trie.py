"""Zero-shot label scoring on 20 BANKING77 intents: the labels' continuations per label vs as a trie.

    python bench/label_trie.py [--items 40] [--rounds 2] [--threads 1] [--out bench/results/label_trie.json]

A zero-shot trial scores every label's full token sequence (its first tokens are not enough for a model
never tuned on the labels), for the test set and again for each perturbation, validation and
out-of-scope set: issue 20 saw a SmolLM2 zero-shot trial on 20 intents take 15.5 min, nearly all of it
there. Before: each label's tokens 2.. run as its own row of a continuation pass, on a copy of the
prompt's KV cache per label (`_continuations`, still used where a tree mask cannot be). After: one
pass of the labels' distinct prefixes (`LabelTrie`) under a tree attention mask, on the prompt's cache.
Same scores (checked here, and in tests/test_scoring.py against per-label full forward passes).

SmolLM2-135M zero-shot prompt (label list shown), BANKING77 test items of the 20 intents the tests
use; both ways run once per round, in turn, after an untimed warm-up, in one process; the fp32 matmul
peak is measured in the same run. Scoring is what a zero-shot trial spends nearly all its time on, so
the per-item ratio is the trial's ratio (less its model load and the latency measurement).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from report import write_json
from rich.console import Console
from rich.table import Table

from bakeoff.evaluation import score
from bakeoff.evaluation.score import LabelTrie, label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style
from bakeoff.models.sources import resolve_source

LABELS = [
    "card_arrival", "lost_or_stolen_card", "exchange_rate", "change_pin", "top_up_failed", "declined_transfer",
    "pending_card_payment", "card_not_working", "transfer_not_received_by_recipient",
    "balance_not_updated_after_bank_transfer",
    "request_refund", "cash_withdrawal_charge", "card_payment_fee_charged", "wrong_amount_of_cash_received",
    "verify_my_identity", "terminate_account", "passcode_forgotten", "edit_personal_details", "top_up_by_card_charge",
    "extra_charge_on_statement",
]  # fmt: skip
INSTRUCTION = "Classify the banking customer message into one intent."


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/results/label_trie.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    folder = Path(os.environ.get("BAKEOFF_BANKING77", "/work/shared/datasets/banking77"))
    with open(folder / "test.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["category"] in LABELS]
    texts = [r["text"] for r in rows[: args.items]]
    source = resolve_source("smollm2-135m")
    tokenizer = load_tokenizer(source, LoadOptions())
    model = load_model(source, LoadOptions())
    fmt = PromptFormat(INSTRUCTION, LABELS, True, 256, prompt_style("auto", fine_tuned=False))
    encoder = PromptEncoder(tokenizer, fmt)
    items = encoder.encode(texts)
    trie = LabelTrie.of(encoder.label_ids)
    per_label_tokens = sum(len(label) - 1 for label in encoder.label_ids)
    pad = tokenizer.pad_token_id

    def run(way: str) -> tuple[float, np.ndarray]:
        saved = score.TREE_ATTENTION
        score.TREE_ATTENTION = saved if way == "trie" else ()
        try:
            started = time.perf_counter()
            scores = label_log_probs(model, items, encoder.label_ids, pad, args.batch)
            return time.perf_counter() - started, scores
        finally:
            score.TREE_ATTENTION = saved

    run("per-label"), run("trie")  # warm-up
    peaks, times = [], {"per-label": [], "trie": []}
    ratios, max_diff = [], 0.0
    for _ in range(args.rounds):
        peaks.append(matmul_peak_gflops())
        before, before_scores = run("per-label")
        after, after_scores = run("trie")
        times["per-label"].append(before)
        times["trie"].append(after)
        ratios.append(before / after)
        max_diff = max(max_diff, float(np.abs(before_scores - after_scores).max()))
    table = Table(title=f"SmolLM2-135M zero-shot, 20 BANKING77 intents, {len(items)} items, {args.threads} threads")
    for column in ("continuations", "tokens run per item after the prompt", "s (median)", "items/s"):
        table.add_column(column)
    for way, tokens in (("per-label", per_label_tokens), ("trie", len(trie.tokens))):
        seconds = statistics.median(times[way])
        table.add_row(way, str(tokens), f"{seconds:.1f}", f"{len(items) / seconds:.2f}")
    console.print(table)
    console.print(
        f"speed-up {statistics.median(ratios):.2f}x (per round {', '.join(f'{r:.2f}' for r in ratios)}); "
        f"max |score difference| {max_diff:.2e}; matmul peak in this run {', '.join(f'{p:.0f}' for p in peaks)} "
        "GFLOP/s"
    )
    write_json(
        console,
        args.out,
        {
            "items": len(items),
            "threads": args.threads,
            "batch": args.batch,
            "label_tokens": [len(label) for label in encoder.label_ids],
            "per_label_tokens_run": per_label_tokens,
            "trie_tokens_run": len(trie.tokens),
            "seconds": times,
            "ratios": ratios,
            "median_ratio": statistics.median(ratios),
            "max_abs_score_difference": max_diff,
            "matmul_peak_gflops": peaks,
        },
        table=table,
    )


if __name__ == "__main__":
    main()
