"""Training speed: bakeoff's LoRA loop vs the naive recipe, same model, data, LoRA config and threads.

    python bench/train_speed.py [--examples 96] [--epochs 2] [--seeds 5] [--padded-seeds 1] [--out bench/results/train_speed.json]

Naive (reference only, lives here): HF `Trainer` + PEFT LoRA, default collation (pad to the longest in
the batch), loss from full-vocab logits at every position (prompt positions masked with -100).
bakeoff: packed batches (shared prompt prefix once per row, no padding; `training/packing.py`) and the
LM head only on label positions (`training/loop.py`); also shown with packing off (left-padded batches,
for the first `--padded-seeds` seeds: its loss equals packing's by construction, tested in tests/test_packing.py).
All methods train on the same prompts (bakeoff's plain fine-tuning prompt: 42 tokens per ticket
on average against 50 in the chat template), so the ratio is the training loop's alone; the shorter
prompt's saving comes on top of it. Each method trains once per seed (LoRA init, data order, dropout); the table gives real (non-pad)
tokens/s over all seeds, the final loss (label-token loss of each trained model on the same 40 held-out
tickets) as mean and spread over seeds, peak RSS, and useful FLOP/s (4 x N per real token, N = matmul
parameters: everything but the embedding lookup, LM head included) over the fp32 matmul peak measured
in this same run. With 24 optimizer steps the final loss moves by tens of percent with the seed alone,
so one seed cannot show "equal loss"; the mean over seeds can.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from rich.console import Console
from rich.table import Table

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.efficiency.hardware import measure_cpu
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.measure import PeakMemory
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style
from bakeoff.models.sources import resolve_source
from bakeoff.training.lora import apply_lora
from bakeoff.training.loop import LoopInputs, evaluate_loss, train
from report import print_targets, write_json

BATCH, LR = 8, 1e-3
METHODS = ("naive", "bakeoff", "bakeoff, packing off")
LORA = LoraSpec(r=16, alpha=32, dropout=0.05, targets="all")


def naive(model, tokenizer, items, label_ids, epochs: int, seed: int) -> dict:
    """HF Trainer with default padding collation and full logits."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    rows = [{"input_ids": i.prompt_ids + label_ids[i.label_index],
             "labels": [-100] * len(i.prompt_ids) + label_ids[i.label_index]} for i in items]
    dataset = Dataset.from_list(rows)
    losses = []

    class Recorder(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            losses.append(float(loss.detach()) if not return_outputs else float(loss[0].detach()))
            return loss

    warmup = int(0.06 * -(-len(rows) // BATCH) * epochs)  # same warm-up as bakeoff's loop (transformers 5 has no warmup_ratio)
    args = TrainingArguments(output_dir="/tmp/bakeoff-bench-naive", per_device_train_batch_size=BATCH, num_train_epochs=epochs,
                             learning_rate=LR, lr_scheduler_type="linear", warmup_steps=warmup, logging_strategy="no",
                             save_strategy="no", report_to=[], use_cpu=True, seed=seed, data_seed=seed, dataloader_num_workers=0)
    collator = DataCollatorForSeq2Seq(tokenizer, padding="longest")
    padded = []

    def counting_collator(features):
        batch = collator(features)
        padded.append(batch["input_ids"].numel())
        return batch

    trainer = Recorder(model=model, args=args, train_dataset=dataset, data_collator=counting_collator)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    tokens = sum(len(r["input_ids"]) for r in rows) * epochs
    return {"seconds": seconds, "real_tokens": tokens, "steps": len(losses), "computed_tokens": sum(padded)}


def ours(model, items, validation, label_ids, pad_id, epochs: int, seed: int, packing: bool) -> dict:
    spec = TrainingSpec(epochs=epochs, batch_size=BATCH, learning_rate=LR, early_stopping_patience=0, packing=packing)
    result = train(model, LoopInputs(items, validation, label_ids, pad_id, LR, seed), spec, Accelerator(cpu=True))
    assert result.packed == packing
    return {"seconds": result.step_time_s, "real_tokens": result.train_tokens, "steps": result.steps,
            "computed_tokens": result.computed_tokens}


def held_out_loss(model, items, label_ids, pad_id) -> float:
    """The same label-token loss on the same held-out items, for every trained model."""
    return evaluate_loss(model, LoopInputs([], items, label_ids, pad_id, LR, 0), BATCH, "cpu")


def run(examples: int, epochs: int, seeds: int, padded_seeds: int, out: Path) -> dict:
    console = Console()
    peak = measure_cpu()
    source = resolve_source("smollm2-135m")
    tokenizer = load_tokenizer(source, LoadOptions())
    data = generate_tickets(examples + 48, seed=5)
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the customer message into one category.", sorted(set(data.labels)), False,
                                                    style=prompt_style("auto", fine_tuned=True)))
    items = encoder.encode(data.texts, data.labels)
    arch = introspect(load_model(source, LoadOptions()).config)
    matmul_params = arch.params_active - arch.params_embedding + (0 if arch.params_lm_head else arch.params_lm_head_compute)
    runs = {name: [] for name in METHODS}
    for seed in range(seeds):
        for name in METHODS:
            if name == "bakeoff, packing off" and seed >= padded_seeds:
                continue
            torch.manual_seed(seed)
            model = apply_lora(load_model(source, LoadOptions()), LORA, seed)
            with PeakMemory("cpu") as memory:
                if name == "naive":
                    measured = naive(model, tokenizer, items[:examples], encoder.label_ids, epochs, seed)
                else:
                    measured = ours(model, items[:examples], items[examples:examples + 8], encoder.label_ids, tokenizer.pad_token_id,
                                    epochs, seed, packing=name == "bakeoff")
            measured["final_loss"] = held_out_loss(model, items[examples + 8:], encoder.label_ids, tokenizer.pad_token_id)
            measured["peak_rss_mb"] = memory.peak_mb
            console.print(f"seed {seed} {name}: {measured['real_tokens'] / measured['seconds']:.0f} tok/s, "
                          f"held-out loss {measured['final_loss']:.3f}")
            runs[name].append(measured)
            del model
    results = {name: _summary(per_seed, matmul_params, peak["matmul_gflops"]) for name, per_seed in runs.items() if per_seed}
    ratio = results["bakeoff"]["tokens_per_s"] / results["naive"]["tokens_per_s"]
    loss_gap = abs(results["bakeoff"]["final_loss"] - results["naive"]["final_loss"]) / results["naive"]["final_loss"]
    targets = {"speed ratio >= 2x": ratio >= 2, "held-out loss (mean over seeds) within 5%": loss_gap <= 0.05,
               "bakeoff >= 50% of matmul peak": results["bakeoff"]["share_of_peak"] >= 0.5}
    table = Table(title=f"SmolLM2-135M LoRA r16 all-linear, batch {BATCH}, {examples} tickets x {epochs} epochs x {seeds} seeds, fp32, "
                        f"{peak['threads']} threads; matmul peak {peak['matmul_gflops']:.0f} GFLOP/s")
    for column in ("method", "steps", "real tok/s", "computed tokens", "useful GFLOP/s", "% of peak", "held-out loss (sd)", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, r in results.items():
        table.add_row(name, str(r["steps"]), f"{r['tokens_per_s']:.0f}", f"{r['computed_tokens']:,}", f"{r['useful_gflops']:.1f}",
                      f"{100 * r['share_of_peak']:.0f}%", f"{r['final_loss']:.3f} ({r['final_loss_sd']:.3f})", f"{r['peak_rss_mb']:.0f}")
    console.print(table)
    gaps = [(b["final_loss"] - n["final_loss"]) / n["final_loss"] for n, b in zip(runs["naive"], runs["bakeoff"])]
    console.print(f"speed ratio {ratio:.2f}x; final-loss gap {100 * loss_gap:.1f}% (mean over {seeds} seeds; "
                  f"per seed, bakeoff vs naive: {', '.join(f'{100 * g:+.0f}%' for g in gaps)})")
    print_targets(console, targets)
    return write_json(console, out, {"cpu": peak, "matmul_params": matmul_params, "examples": examples, "epochs": epochs, "seeds": seeds,
                                     "results": results, "runs": runs, "speed_ratio": ratio, "final_loss_gap": loss_gap, "per_seed_loss_gaps": gaps,
                                     "targets": targets})


def _summary(per_seed: list[dict], matmul_params: int, peak_gflops: float) -> dict:
    seconds = sum(r["seconds"] for r in per_seed)
    tokens = sum(r["real_tokens"] for r in per_seed)
    losses = [r["final_loss"] for r in per_seed]
    computed = sum(r["computed_tokens"] for r in per_seed) // len(per_seed)  # per run; naive: every padded position
    tokens_per_s = tokens / seconds
    useful = 4 * matmul_params * tokens_per_s / 1e9
    return {"steps": per_seed[0]["steps"], "tokens_per_s": tokens_per_s, "computed_tokens": computed, "useful_gflops": useful,
            "share_of_peak": useful / peak_gflops, "final_loss": statistics.mean(losses),
            "final_loss_sd": statistics.stdev(losses) if len(losses) > 1 else 0.0,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in per_seed)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--padded-seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_speed.json"))
    args = parser.parse_args()
    run(args.examples, args.epochs, args.seeds, args.padded_seeds, args.out)
