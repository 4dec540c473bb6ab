"""Training speed: bakeoff's LoRA loop vs the naive recipe, same model, data, LoRA config and threads.

    python bench/train_speed.py [--examples 96] [--epochs 2] [--seeds 3] [--padded-seeds 1] [--recipe-seeds 2] [--out
    bench/results/train_speed.json]

Naive (reference only, lives here): HF `Trainer` + PEFT LoRA, default collation (pad to the longest in
the batch), loss from full-vocab logits at every position (prompt positions masked with -100).
bakeoff: packed batches (shared prompt prefix once per row, no padding, no final label token;
`training/packing.py`), the LM head only on label positions, and LoRA's sum inside addmm
(`training/fused_lora.py`); also shown with packing off (left-padded batches,
for the first `--padded-seeds` seeds: its loss equals packing's by construction, tested in tests/test_packing.py).

Two comparisons. (1) The loop alone: naive and bakeoff train on the same prompts (bakeoff's plain
fine-tuning prompt), compared in real tokens/s and final loss. Per seed both start from the same LoRA
init and see the same batches in the same order (the Trainer reads bakeoff's order sequentially), and
LoRA dropout is 0 (bakeoff's and PEFT's default): they differ only in how they compute, so their
training-loss curves are compared step by step too. (2) The recipe: the naive way also prompts with the
chat template's default form (68 tokens per ticket against 42), so the table gives tickets/s, the unit
in which a user waits; its loss is over other label tokens and is not compared.
Final loss = label-token loss of each trained model on the same 40 held-out tickets (mean and spread
over seeds). Held-out accuracy = the same tickets classified by each trained model with its own
prompt (label scoring, argmax): the quality check that also holds across the two prompts. Useful
FLOP/s = 4 x N per real token (N = matmul parameters: everything but the embedding lookup, LM head
included) over the fp32 matmul peak measured in this same run. Every method first runs
once untimed on 2 batches, so no method pays the process's first-call costs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from naive_prompts import default_chat_items
from report import print_targets, write_json
from rich.console import Console
from rich.table import Table

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.efficiency.hardware import measure_cpu
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.measure import PeakMemory
from bakeoff.evaluation.score import label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style
from bakeoff.models.sources import resolve_source
from bakeoff.training.batches import batches
from bakeoff.training.loop import LoopInputs, evaluate_loss, train
from bakeoff.training.lora import apply_lora

BATCH, LR = 8, 1e-3
RECIPE = "naive recipe, chat template default prompt"
METHODS = ("naive", "bakeoff", "bakeoff, packing off", RECIPE)
INSTRUCTION = "Classify the customer message into one category."
LORA = LoraSpec(r=16, alpha=32, targets="all")  # bakeoff's default dropout (0), as in PEFT's own default


def naive(model, tokenizer, items, label_ids, epochs: int, seed: int) -> dict:
    """HF Trainer with default padding collation and full logits, fed bakeoff's batches in bakeoff's order."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    # The same examples in the same batches and order as bakeoff's loop (`training/batches.py`), one epoch
    # after another, read sequentially: the two recipes then differ in how they compute, not in what they see.
    ordered = [
        item for epoch in range(epochs) for batch in batches(items, BATCH, seed=seed * 1000 + epoch) for item in batch
    ]
    rows = [
        {
            "input_ids": i.prompt_ids + label_ids[i.label_index],
            "labels": [-100] * len(i.prompt_ids) + label_ids[i.label_index],
        }
        for i in ordered
    ]
    dataset = Dataset.from_list(rows)
    losses = []

    class Recorder(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            losses.append(float(loss.detach()) if not return_outputs else float(loss[0].detach()))
            return loss

    steps = len(rows) // BATCH
    warmup = int(0.06 * steps)  # same warm-up as bakeoff's loop (transformers 5 has no warmup_ratio)
    args = TrainingArguments(
        output_dir="/tmp/bakeoff-bench-naive",
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        learning_rate=LR,
        lr_scheduler_type="linear",
        warmup_steps=warmup,
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        train_sampling_strategy="sequential",
    )
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
    return {
        "seconds": seconds,
        "real_tokens": sum(len(r["input_ids"]) for r in rows),
        "steps": len(losses),
        "computed_tokens": sum(padded),
        "step_losses": losses,
    }


def ours(model, items, validation, label_ids, pad_id, epochs: int, seed: int, packing: bool) -> dict:
    spec = TrainingSpec(epochs=epochs, batch_size=BATCH, learning_rate=LR, early_stopping_patience=0, packing=packing)
    losses = []
    result = train(
        model,
        LoopInputs(items, validation, label_ids, pad_id, LR, seed),
        spec,
        Accelerator(cpu=True),
        on_step=losses.append,
    )
    assert result.packed == packing
    return {
        "seconds": result.step_time_s,
        "real_tokens": result.train_tokens,
        "steps": result.steps,
        "computed_tokens": result.computed_tokens,
        "step_losses": losses,
    }


def held_out_loss(model, items, label_ids, pad_id) -> float:
    """The same label-token loss on the same held-out items, for every trained model."""
    return evaluate_loss(model, LoopInputs([], items, label_ids, pad_id, LR, 0), BATCH, "cpu")


def held_out_accuracy(model, items, label_ids, pad_id) -> float:
    """Share of held-out items whose highest-scoring label (all label tokens) is the true one."""
    scores = label_log_probs(model, items, label_ids, pad_id, batch_size=16)
    return float(np.mean(scores.argmax(axis=1) == np.array([i.label_index for i in items])))


def run(examples: int, epochs: int, seeds: int, padded_seeds: int, recipe_seeds: int, out: Path) -> dict:
    console = Console()
    peak = measure_cpu()
    source = resolve_source("smollm2-135m")
    tokenizer = load_tokenizer(source, LoadOptions())
    data = generate_tickets(examples + 48, seed=5)
    labels = sorted(set(data.labels))
    encoder = PromptEncoder(
        tokenizer, PromptFormat(INSTRUCTION, labels, False, style=prompt_style("auto", fine_tuned=True))
    )
    items = encoder.encode(data.texts, data.labels)
    chat_label_ids = PromptEncoder(
        tokenizer, PromptFormat(INSTRUCTION, labels, False, style="chat")
    ).label_ids  # label words + EOS
    chat_items = default_chat_items(tokenizer, INSTRUCTION, data.texts, data.labels, labels)
    arch = introspect(load_model(source, LoadOptions()).config)
    matmul_params = (
        arch.params_active - arch.params_embedding + (0 if arch.params_lm_head else arch.params_lm_head_compute)
    )

    def train_one(name: str, seed: int, n: int, n_epochs: int) -> tuple[object, dict]:
        torch.manual_seed(seed)
        model = apply_lora(load_model(source, LoadOptions()), LORA, seed)
        if name == "naive":
            return model, naive(model, tokenizer, items[:n], encoder.label_ids, n_epochs, seed)
        if name == RECIPE:
            return model, naive(model, tokenizer, chat_items[:n], chat_label_ids, n_epochs, seed)
        return model, ours(
            model,
            items[:n],
            items[examples : examples + 8],
            encoder.label_ids,
            tokenizer.pad_token_id,
            n_epochs,
            seed,
            packing=name == "bakeoff",
        )

    console.print("warm-up: every method once on 2 batches, untimed (first-call costs land on no method)")
    for name in METHODS:
        train_one(name, 0, 2 * BATCH, 1)
    runs = {name: [] for name in METHODS}
    for seed in range(seeds):
        for name in METHODS:
            if (name == "bakeoff, packing off" and seed >= padded_seeds) or (name == RECIPE and seed >= recipe_seeds):
                continue
            with PeakMemory("cpu") as memory:
                model, measured = train_one(name, seed, examples, epochs)
            # The recipe's loss is over other label tokens (words + EOS after its own prompt): not comparable, not
            # shown.
            measured["final_loss"] = (
                None
                if name == RECIPE
                else held_out_loss(model, items[examples + 8 :], encoder.label_ids, tokenizer.pad_token_id)
            )
            own_items, own_labels = (chat_items, chat_label_ids) if name == RECIPE else (items, encoder.label_ids)
            measured["held_out_accuracy"] = held_out_accuracy(
                model, own_items[examples + 8 :], own_labels, tokenizer.pad_token_id
            )
            measured["examples"] = examples * epochs
            measured["peak_rss_mb"] = memory.peak_mb
            console.print(
                f"seed {seed} {name}: {measured['real_tokens'] / measured['seconds']:.0f} tok/s, "
                f"{measured['examples'] / measured['seconds']:.2f} tickets/s, held-out loss "
                f"{measured['final_loss'] or float('nan'):.3f}, "
                f"accuracy {100 * measured['held_out_accuracy']:.1f}%"
            )
            runs[name].append(measured)
            del model
    results = {
        name: _summary(per_seed, matmul_params, peak["matmul_gflops"]) for name, per_seed in runs.items() if per_seed
    }
    ratio = results["bakeoff"]["tokens_per_s"] / results["naive"]["tokens_per_s"]
    recipe_ratio = results["bakeoff"]["examples_per_s"] / results[RECIPE]["examples_per_s"]
    loss_gap = abs(results["bakeoff"]["final_loss"] - results["naive"]["final_loss"]) / results["naive"]["final_loss"]
    targets = {
        "tokens/s >= 2x naive, same prompt (the training loop alone)": ratio >= 2,
        "tickets/s >= 2x the naive recipe (loop and prompt)": recipe_ratio >= 2,
        "held-out loss (mean over seeds) within 5%": loss_gap <= 0.05,
        "held-out accuracy not below the naive recipe's (mean over seeds)": results["bakeoff"]["held_out_accuracy"]
        >= results[RECIPE]["held_out_accuracy"] - 1e-9,
        "bakeoff >= 50% of matmul peak": results["bakeoff"]["share_of_peak"] >= 0.5,
    }
    table = Table(
        title=f"SmolLM2-135M LoRA r16 all-linear, batch {BATCH}, {examples} tickets x {epochs} epochs x "
        f"{seeds} seeds, fp32, "
        f"{peak['threads']} threads; matmul peak {peak['matmul_gflops']:.0f} GFLOP/s"
    )
    for column in (
        "method",
        "tokens/ticket",
        "real tok/s",
        "tickets/s",
        "computed tokens",
        "useful GFLOP/s",
        "% of peak",
        "held-out loss (sd)",
        "held-out acc",
        "peak RSS MB",
    ):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, r in results.items():
        loss = "n/a" if r["final_loss"] is None else f"{r['final_loss']:.3f} ({r['final_loss_sd']:.3f})"
        table.add_row(
            name,
            f"{r['tokens_per_example']:.1f}",
            f"{r['tokens_per_s']:.0f}",
            f"{r['examples_per_s']:.2f}",
            f"{r['computed_tokens']:,}",
            f"{r['useful_gflops']:.1f}",
            f"{100 * r['share_of_peak']:.0f}%",
            loss,
            f"{100 * r['held_out_accuracy']:.1f}%",
            f"{r['peak_rss_mb']:.0f}",
        )
    console.print(table)
    gaps = [(b["final_loss"] - n["final_loss"]) / n["final_loss"] for n, b in zip(runs["naive"], runs["bakeoff"])]
    step_gaps = [
        abs(b - n) / n
        for nr, br in zip(runs["naive"], runs["bakeoff"])
        for n, b in zip(nr["step_losses"], br["step_losses"])
    ]
    curve_gap = statistics.mean(step_gaps)
    console.print(
        f"tickets/s: bakeoff {recipe_ratio:.2f}x the naive recipe; tokens/s at the same prompt: "
        f"{ratio:.2f}x; final-loss gap {100 * loss_gap:.1f}% (mean over {seeds} seeds; "
        f"per seed, bakeoff vs naive: {', '.join(f'{100 * g:+.1f}%' for g in gaps)}); training-loss curves: "
        f"mean |bakeoff - naive| per step {100 * curve_gap:.1f}% of naive's, max {100 * max(step_gaps):.1f}%"
    )
    print_targets(console, targets)
    return write_json(
        console,
        out,
        {
            "cpu": peak,
            "matmul_params": matmul_params,
            "examples": examples,
            "epochs": epochs,
            "seeds": seeds,
            "results": results,
            "runs": runs,
            "speed_ratio": ratio,
            "recipe_speed_ratio": recipe_ratio,
            "final_loss_gap": loss_gap,
            "per_seed_loss_gaps": gaps,
            "step_loss_gap_mean": curve_gap,
            "step_loss_gap_max": max(step_gaps),
            "targets": targets,
        },
        table=table,
    )


def _summary(per_seed: list[dict], matmul_params: int, peak_gflops: float) -> dict:
    seconds = sum(r["seconds"] for r in per_seed)
    tokens = sum(r["real_tokens"] for r in per_seed)
    examples = sum(r["examples"] for r in per_seed)
    losses = [r["final_loss"] for r in per_seed if r["final_loss"] is not None]
    computed = sum(r["computed_tokens"] for r in per_seed) // len(per_seed)  # per run; naive: every padded position
    tokens_per_s = tokens / seconds
    useful = 4 * matmul_params * tokens_per_s / 1e9
    return {
        "steps": per_seed[0]["steps"],
        "tokens_per_s": tokens_per_s,
        "examples_per_s": examples / seconds,
        "tokens_per_example": tokens / examples,
        "computed_tokens": computed,
        "useful_gflops": useful,
        "share_of_peak": useful / peak_gflops,
        "final_loss": statistics.mean(losses) if losses else None,
        "final_loss_sd": statistics.stdev(losses) if len(losses) > 1 else 0.0,
        "held_out_accuracy": statistics.mean(r["held_out_accuracy"] for r in per_seed),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in per_seed),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--padded-seeds", type=int, default=1, help="seeds that also run bakeoff with packing off")
    parser.add_argument(
        "--recipe-seeds", type=int, default=2, help="seeds that also run the naive recipe on its chat prompt"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_speed.json"))
    args = parser.parse_args()
    if args.examples % BATCH:
        parser.error(
            f"--examples must be a multiple of the batch size {BATCH} (the Trainer reads bakeoff's batches "
            "back to back)"
        )
    run(args.examples, args.epochs, args.seeds, args.padded_seeds, args.recipe_seeds, args.out)
