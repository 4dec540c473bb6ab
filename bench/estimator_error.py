"""How wrong is bakeoff's estimator on this machine? Measured vs estimated, three model sizes.

    python bench/estimator_error.py [--out bench/results/estimator_error.json]

For a tiny Llama (hidden 64), a mid-size Llama (hidden 256, 8 layers) and SmolLM2-135M (real weights,
real tokenizer), it measures with bakeoff's own code path on built-in tickets: the mean LoRA step time
(batch 8, fp32) and batch-1 label-scoring latency (p50 of 12, after warm-up). It estimates both for this
CPU from the architecture alone, using the fp32 matmul peak measured in the same run, and prints the
ratio measured / estimated. A ratio of 3 means the code reaches a third of the roofline estimate.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from accelerate import Accelerator
from rich.console import Console
from rich.table import Table
from transformers import LlamaConfig, LlamaForCausalLM

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.efficiency import estimate
from bakeoff.efficiency.hardware import Hardware, measure_cpu
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.latency import measure_scoring
from bakeoff.evaluation.score import label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style, shared_prefix_length
from bakeoff.models.sources import resolve_source
from bakeoff.training.lora import prepare_for_method
from bakeoff.training.loop import LoopInputs, train
from report import write_json

BATCH = 8


def models(tokenizer):
    vocab = len(tokenizer)
    torch.manual_seed(0)
    yield "llama-tiny (h64, 2 layers)", LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=172,
                                                                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                                     tie_word_embeddings=True))
    yield "llama-mid (h256, 8 layers)", LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=688,
                                                                     num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                                                                     tie_word_embeddings=True))
    yield "smollm2-135m (real)", load_model(resolve_source("smollm2-135m"), LoadOptions())


def run(out: Path) -> dict:
    console = Console()
    peak = measure_cpu()
    cpu = Hardware("local-cpu", "this CPU", peak["matmul_gflops"] / 1000, 24, peak["bandwidth_gbs"], 0.0, measured=True)
    console.print(f"measured: fp32 matmul {peak['matmul_gflops']:.1f} GFLOP/s, copy bandwidth {peak['bandwidth_gbs']:.1f} GB/s, "
                  f"{peak['threads']} threads")
    tokenizer = load_tokenizer(resolve_source("smollm2-135m"), LoadOptions())
    data = generate_tickets(80, seed=11)
    labels = sorted(set(data.labels))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the customer message into one category.", labels, False,
                                                    style=prompt_style("auto", fine_tuned=True)))
    items = encoder.encode(data.texts, data.labels)
    prompt_tokens = statistics.mean(len(i.prompt_ids) for i in items)
    label_tokens = statistics.mean(len(ids) for ids in encoder.label_ids)
    rows = []
    for name, model in models(tokenizer):
        arch = introspect(model.config)
        lora = prepare_for_method(model, "lora", LoraSpec(r=16, targets="all"), 0, False)
        inputs = LoopInputs(items[:48], items[48:56], encoder.label_ids, tokenizer.pad_token_id, 1e-3, seed=0)
        result = train(lora, inputs, TrainingSpec(epochs=1, batch_size=BATCH, early_stopping_patience=0), Accelerator(cpu=True))
        measured_step = result.step_time_s / result.steps
        serving = measure_scoring(lambda batch, size: label_log_probs(lora, batch, encoder.label_ids, tokenizer.pad_token_id, size),
                                  items[56:], repeats=12, batch_sizes=(8,))
        workload = estimate.Workload(method="lora", train_examples=48, epochs=1, prompt_tokens=round(prompt_tokens),
                                     shared_prefix_tokens=shared_prefix_length([i.prompt_ids for i in items]) if result.packed else 0,
                                     label_tokens=round(label_tokens), num_labels=len(labels), batch_size=BATCH)
        tune = estimate.fine_tune(arch, workload, cpu)
        serve = estimate.inference(arch, workload, cpu, batch_sizes=(1,))
        useful_gflops = tune.flops_per_token * result.train_tokens / result.step_time_s / 1e9
        rows.append({
            "model": name, "params": arch.params_total, "measured_step_s": measured_step, "estimated_step_s": tune.step_time_s,
            "step_ratio": measured_step / tune.step_time_s, "measured_latency_ms_b1": serving["latency_ms_p50"],
            "estimated_latency_ms_b1": serve.latency_ms_by_batch[1],
            "latency_ratio": serving["latency_ms_p50"] / serve.latency_ms_by_batch[1],
            "train_tokens_per_s": result.train_tokens / result.step_time_s, "useful_train_gflops": useful_gflops,
            "share_of_matmul_peak": useful_gflops / peak["matmul_gflops"],
        })
    table = Table(title="estimator error on this CPU (ratio = measured / estimated)")
    for column in ("model", "params", "step s meas", "step s est", "ratio", "latency ms meas", "latency ms est", "ratio", "train GFLOP/s (% peak)"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['params'] / 1e6:.1f}M", f"{r['measured_step_s']:.3f}", f"{r['estimated_step_s']:.3f}",
                      f"{r['step_ratio']:.2f}", f"{r['measured_latency_ms_b1']:.1f}", f"{r['estimated_latency_ms_b1']:.1f}",
                      f"{r['latency_ratio']:.2f}", f"{r['useful_train_gflops']:.1f} ({100 * r['share_of_matmul_peak']:.0f}%)")
    console.print(table)
    return write_json(console, out, {"cpu": peak, "batch_size": BATCH, "prompt_tokens": prompt_tokens,
                                     "label_tokens": label_tokens, "rows": rows})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/estimator_error.json"))
    run(parser.parse_args().out)
