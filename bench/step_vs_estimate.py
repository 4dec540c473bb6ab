"""Training step and batch-1 scoring of the demo's LLMs against bakeoff's own estimate, at 1 and 2 threads.

    python bench/step_vs_estimate.py [--models gemma3-270m smollm2-135m] [--threads 1 2] [--rounds 3]

Issue 20 reported Gemma-3-270M's LoRA step at 12x its estimate (SmolLM2: ~2.5x) and its batch-1 latency
at 32x. This runs the demo's recipe (LoRA r16 on all linear layers, batch 4, packed batches, the plain
fine-tuning prompt on built-in tickets) for each model and thread count in turn, in one process:
- the fp32 matmul peak at that thread count (2048x2048, best of 5), measured right before the model's
  steps, so the estimate uses the peak the machine gave at that moment (`Hardware` built from it);
- rounds: in each, every (thread count, model) cell runs one optimizer step and two batch-1 scores, in turn;
- batch-1 label scoring: first-token on the LoRA model (a fine-tuned trial's path) and full label
  sequences on the base model with the label-list prompt (a zero-shot trial's path), medians over rounds;
- the top operators of one profiled step (torch profiler) for each model at 1 thread.
Ratio = measured / estimated (efficiency/estimate.py, the number a trial stores in `efficiency`): in the
table from the medians, in the JSON also per round against that round's peak (`step_ratio_by_round`).

On a shared 2-core machine, 2 threads are only as good as the second core is free: a parallel region waits
for both threads, so when another process holds one core every small op waits for a scheduler slice. The
1-thread rows then show what the code costs; the 2-thread rows what the contention costs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from report import write_json
from rich.console import Console
from rich.table import Table

from bakeoff.config import LoraSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.efficiency.compare import measured_vs_estimated
from bakeoff.efficiency.estimate import Workload
from bakeoff.efficiency.hardware import Hardware
from bakeoff.efficiency.introspect import introspect
from bakeoff.evaluation.score import label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style, shared_prefix_length
from bakeoff.models.sources import resolve_source
from bakeoff.training.fused_lora import fused_lora_forward
from bakeoff.training.grouped_attention import grouped_attention
from bakeoff.training.lora import prepare_for_method
from bakeoff.training.packing import batch_builder

INSTRUCTION = "Classify the customer support ticket into one category."
BATCH = 4


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def hardware_at(gflops: float) -> Hardware:
    return Hardware("local-cpu", "this CPU (measured in this run)", gflops / 1000, 24.0, 20.0, 0.0, measured=True)


@dataclass
class Candidate:
    """One model, LoRA-wrapped, with its encoded items and optimizer: what a round times."""

    name: str
    model: object
    arch: object
    tuned: PromptEncoder
    zero: PromptEncoder
    train_items: list
    score_items: list
    zero_items: list
    pad: int
    make_batch: object
    optimizer: object
    packed: bool
    steps_done: int = 0

    def step(self) -> float:
        k = self.steps_done % (len(self.train_items) // BATCH)
        self.steps_done += 1
        started = time.perf_counter()
        batch = self.make_batch(self.train_items[BATCH * k : BATCH * (k + 1)])
        loss, _ = batch.loss(self.model)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    def batch1_ms(self, zero_shot: bool, item: int) -> float:
        encoder, items = (self.zero, self.zero_items) if zero_shot else (self.tuned, self.score_items)
        started = time.perf_counter()
        if zero_shot:
            with self.model.disable_adapter():  # the base model: the zero-shot trial's function
                label_log_probs(self.model, [items[item]], encoder.label_ids, self.pad, 1, None, False)
        else:
            label_log_probs(self.model, [items[item]], encoder.label_ids, self.pad, 1, None, True)
        return 1000 * (time.perf_counter() - started)

    def compared(self, peak_gflops: float, step_s: float, b1_ms: float) -> dict:
        workload = Workload(
            method="lora",
            train_examples=40,
            epochs=1,
            prompt_tokens=round(sum(len(i.prompt_ids) for i in self.train_items) / len(self.train_items)),
            shared_prefix_tokens=shared_prefix_length([i.prompt_ids for i in self.train_items]) if self.packed else 0,
            label_tokens=round(sum(map(len, self.tuned.label_ids)) / len(self.tuned.label_ids)),
            num_labels=len(self.tuned.label_ids),
            batch_size=BATCH,
        )
        return measured_vs_estimated(self.arch, workload, hardware_at(peak_gflops), step_s, b1_ms)


def prepare(name: str) -> Candidate:
    tickets = generate_tickets(80, seed=0)
    labels = sorted(set(tickets.labels))
    source = resolve_source(name)
    tokenizer = load_tokenizer(source, LoadOptions())
    model = load_model(source, LoadOptions())
    arch = introspect(model.config)
    tuned = PromptEncoder(tokenizer, PromptFormat(INSTRUCTION, labels, False, 256, prompt_style("auto", True)))
    zero = PromptEncoder(tokenizer, PromptFormat(INSTRUCTION, labels, True, 256, prompt_style("auto", False)))
    train_items = tuned.encode(tickets.texts[:40], tickets.labels[:40])
    lora = prepare_for_method(model, "lora", LoraSpec(r=16, alpha=32, targets="all"), 0, False)
    make_batch, packed = batch_builder(lora, train_items, tuned.label_ids, tokenizer.pad_token_id, True)
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-4, fused=True)
    return Candidate(
        name, lora, arch, tuned, zero, train_items, tuned.encode(tickets.texts[40:60]),
        zero.encode(tickets.texts[40:60]), tokenizer.pad_token_id, make_batch, optimizer, packed,
    )  # fmt: skip


def run(names: list[str], threads_list: list[int], rounds: int, console: Console) -> tuple[list[dict], list[dict]]:
    """Rounds of (threads, model) in turn, so every cell sees the same drift of a shared machine."""
    candidates = [prepare(name) for name in names]
    cells: dict[tuple[str, int], dict] = {}
    with ExitStack() as stack:
        for candidate in candidates:
            stack.enter_context(fused_lora_forward(candidate.model))
            stack.enter_context(grouped_attention(candidate.model))
        for candidate in candidates:  # untimed: first calls pay for allocation
            candidate.model.train()
            candidate.step()
            candidate.model.eval()
            candidate.batch1_ms(False, 0), candidate.batch1_ms(True, 0)
        for r in range(rounds):
            for threads in threads_list:
                torch.set_num_threads(threads)
                peak = matmul_peak_gflops()
                for candidate in candidates:
                    candidate.model.train()
                    step_s = candidate.step()
                    candidate.model.eval()
                    b1 = candidate.batch1_ms(False, 1 + r)
                    zero_b1 = candidate.batch1_ms(True, 1 + r)
                    cell = cells.setdefault((candidate.name, threads), {"peak": [], "step": [], "b1": [], "zero": []})
                    for key, value in (("peak", peak), ("step", step_s), ("b1", b1), ("zero", zero_b1)):
                        cell[key].append(value)
                    console.print(f"round {r} threads {threads} {candidate.name}: peak {peak:.0f} GFLOP/s, "
                                  f"step {step_s:.2f} s, b1 {b1:.0f} ms, zero-shot b1 {zero_b1:.0f} ms")  # fmt: skip
        torch.set_num_threads(1)
        profiles = []
        for candidate in candidates:
            from torch.profiler import ProfilerActivity, profile

            candidate.model.train()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                candidate.step()
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]
            ops = [{"op": e.key, "calls": e.count, "share": e.self_cpu_time_total / total} for e in top]
            profiles.append({"model": candidate.name, "top_ops": ops})
    rows = []
    for (name, threads), cell in cells.items():
        candidate = next(c for c in candidates if c.name == name)
        peak, step_s, b1 = (statistics.median(cell[k]) for k in ("peak", "step", "b1"))
        compared = candidate.compared(peak, step_s, b1)
        # Per round, against the estimate at that round's peak: the machine's speed moves between rounds.
        by_round = [
            candidate.compared(p, st, b)["step_ratio_measured_over_estimated"]
            for p, st, b in zip(cell["peak"], cell["step"], cell["b1"])
        ]
        rows.append({
            "model": name, "threads": threads, "peak_gflops": peak, "step_s": step_s, "b1_ms": b1,
            "zero_shot_b1_ms": statistics.median(cell["zero"]), "raw": cell,
            "estimated_step_s": compared["estimated_step_s"],
            "step_ratio": compared["step_ratio_measured_over_estimated"],
            "step_ratio_by_round": by_round,
            "estimated_b1_ms": compared["estimated_latency_ms_b1"],
            "b1_ratio": compared["latency_ratio_measured_over_estimated"],
        })  # fmt: skip
    return rows, profiles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["gemma3-270m", "smollm2-135m"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/step_vs_estimate.json"))
    args = parser.parse_args()
    console = Console()
    rows, profiles = run(args.models, args.threads, args.rounds, console)
    table = Table(title="LoRA step and batch-1 scoring vs estimate (demo recipe, batch 4)")
    for column in (
        "model",
        "threads",
        "peak GFLOP/s",
        "step s",
        "est. step s",
        "ratio",
        "b1 ms",
        "est. b1 ms",
        "ratio",
        "zero-shot b1 ms",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["model"], str(r["threads"]), f"{r['peak_gflops']:.0f}", f"{r['step_s']:.2f}",
            f"{r['estimated_step_s']:.2f}", f"{r['step_ratio']:.1f}x", f"{r['b1_ms']:.0f}",
            f"{r['estimated_b1_ms']:.0f}", f"{r['b1_ratio']:.1f}x", f"{r['zero_shot_b1_ms']:.0f}",
        )  # fmt: skip
    console.print(table)
    for profile in profiles:
        ops = ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in profile["top_ops"][:5])
        console.print(f"{profile['model']} step at 1 thread, top ops: {ops}")
    write_json(console, args.out, {"rows": rows, "profiles": profiles}, table=table)


if __name__ == "__main__":
    main()
