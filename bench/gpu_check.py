"""The 7-8B path on one GPU, through bakeoff's own code: bf16 LoRA and QLoRA training, then label scoring.

    python bench/gpu_check.py --out DIR [--models mistral-7b llama-3-8b] [--steps 12] [--dry-run]

Run by `bench/gpu_check.sh` (which first installs carried wheels and runs the `gpu`-marked tests).
Each model is its catalog config with random weights, saved once as a bf16 safetensors folder, then
loaded by `models/load.py` (bf16, or NF4 with double quantization for QLoRA), prepared by
`training/lora.py`, trained by `training/loop.py` on built-in tickets (packed batches, LM head on label
positions only) and scored by `evaluation/score.py` at batch 1 and 32.

Per (model, method): training tokens/s, MFU (useful FLOPs = 4 x matmul parameters per real token, LoRA
and QLoRA alike: forward plus the activation gradients, no weight gradients; against the bf16 matmul
peak measured in the same run), peak memory (CUDA max allocated), scoring items/s and p50/p95 ms at
batch 1 and 32, and beside each the estimate of `efficiency.estimate` for the same architecture.

`--dry-run`: everything on CPU in float32 with the models cut to 1 layer of width 64 (full vocabulary),
a few steps, so CI proves the script end to end without CUDA.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.efficiency import estimate
from bakeoff.efficiency.catalog import catalog_config
from bakeoff.efficiency.hardware import gpu, this_machine
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.measure import PeakMemory
from bakeoff.evaluation.score import distinct_first_tokens, label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat, shared_prefix_length
from bakeoff.models.sources import resolve_source
from bakeoff.training.loop import LoopInputs, train
from bakeoff.training.lora import prepare_for_method

CUT = {
    "num_hidden_layers": 1,
    "hidden_size": 64,
    "intermediate_size": 224,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
}
SCORE_BATCHES = (1, 32)


def matmul_peak_tflops(device: str, dtype: torch.dtype, size: int, repeats: int = 20, min_s: float = 1.0) -> float:
    """Best of 3 timings of back-to-back matmuls, each timing at least `min_s` long (on an H100, 20 bf16
    8192^3 products take ~30 ms: too short for the clocks to settle, and the peak would read low)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    best = 0.0
    for _ in range(3):
        started, done = time.perf_counter(), 0
        while done < repeats or time.perf_counter() - started < min_s:
            for _ in range(repeats):
                a @ b
            sync(device)
            done += repeats
        best = max(best, 2 * size**3 * done / (time.perf_counter() - started) / 1e12)
    return best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build(name: str, folder: Path, device: str, dtype: torch.dtype, dry_run: bool) -> None:
    """Random weights in the catalog's architecture (cut in a dry run), saved with a small tokenizer."""
    from tiny import tiny_tokenizer
    from transformers import AutoModelForCausalLM

    config = catalog_config(name)
    if dry_run:
        for key, value in CUT.items():
            setattr(config, key, value)
        if getattr(config, "layer_types", None):
            config.layer_types = config.layer_types[:1]
    torch.manual_seed(0)
    with torch.device(device):  # a 7B model initialises in seconds on the GPU, minutes on its host CPU
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(folder, safe_serialization=True)
    tiny_tokenizer(chat=True).save_pretrained(folder)
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def matmul_params(model) -> tuple[int, int]:
    """(decoder parameters that take part in a matmul for every token, LM-head parameters). The input
    embedding is a lookup, not a matmul. The LM head is apart because bakeoff's loop applies it only at
    label positions, so counting it for every token overstates the work (on the dry run's cut model, whose
    head is most of its weights, that put MFU above 100%). For MoE all experts are counted: MFU is a lower
    bound there."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    embedding = base.get_input_embeddings().weight
    head = base.get_output_embeddings()
    head_weight = head.weight if head is not None else None
    body = 0
    for name, param in base.named_parameters():
        if "lora_" in name or param is embedding or param is head_weight:
            continue
        body += param.numel() * (2 if param.dtype == torch.uint8 else 1)  # NF4 packs two weights per byte
    head_params = head_weight.numel() * (2 if head_weight.dtype == torch.uint8 else 1) if head_weight is not None else 0
    return body, head_params


def packed_vs_padded_loss(model, items, label_ids: list[list[int]], pad_id: int, device: str) -> dict:
    """One batch's label loss through the packed layout (shared prefix, 4-D mask) and through left-padded
    rows, without gradients: on a GPU the packed path's masks run in bf16 on CUDA's SDPA kernels, which no
    CPU test reaches. Equal up to rounding when the packed path is right."""
    from bakeoff.training.batches import collate
    from bakeoff.training.packing import batch_builder

    make_batch, packed = batch_builder(model, items, label_ids, pad_id, packing=True)
    model.eval()
    with torch.no_grad():
        packed_loss = make_batch(items).to(device).loss(model)[0].item()
        padded_loss = collate(items, label_ids, pad_id).to(device).loss(model)[0].item()
    model.train()
    return {
        "packed": packed,
        "packed_loss": packed_loss,
        "padded_loss": padded_loss,
        "relative_difference": abs(packed_loss - padded_loss) / max(abs(padded_loss), 1e-12),
    }


def trial(
    name: str,
    method: str,
    folder: Path,
    device: str,
    dtype: torch.dtype,
    steps: int,
    batch_size: int,
    peak_tflops: float,
    hardware,
    console: Console,
) -> dict:
    source = resolve_source(str(folder))
    options = LoadOptions(device=device, dtype=dtype, load_in_4bit=method == "qlora")
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        tokenizer, model = load_tokenizer(source, options), load_model(source, options)
        load_s = time.perf_counter() - started
        data = generate_tickets(batch_size * steps + 64, seed=0)
        encoder = PromptEncoder(
            tokenizer, PromptFormat("Classify the support ticket.", sorted(set(data.labels)), False)
        )
        items = encoder.encode(data.texts, data.labels)
        train_items, score_items = items[: batch_size * steps], items[batch_size * steps :]
        model = prepare_for_method(
            model, method, LoraSpec(r=16, alpha=32, targets="all"), seed=0, gradient_checkpointing=False
        )
        n_body, n_head = matmul_params(model)
        layouts = packed_vs_padded_loss(
            model, train_items[:batch_size], encoder.label_ids, tokenizer.pad_token_id, device
        )
        inputs = LoopInputs(train_items, score_items[:8], encoder.label_ids, tokenizer.pad_token_id, 2e-4, seed=0)
        stamps: list[float] = []  # after each step (loss.item() has synchronised the device)
        result = train(
            model,
            inputs,
            TrainingSpec(epochs=1, batch_size=batch_size),
            Accelerator(cpu=not device.startswith("cuda")),
            on_step=lambda loss: stamps.append(time.perf_counter()),
        )
    # Steady state: from the end of the first step (kernel selection, allocator warm-up) to the end of the last.
    steady_s = stamps[-1] - stamps[0] if len(stamps) > 1 else result.step_time_s
    steady_tokens = result.train_tokens * (len(stamps) - 1) / len(stamps) if len(stamps) > 1 else result.train_tokens
    tokens_per_s = steady_tokens / steady_s
    # 4 FLOPs per parameter and token: 2 forward, 2 for the input gradient (the base is frozen). The head
    # runs only at label positions (each item's label tokens).
    label_tokens = sum(len(encoder.label_ids[item.label_index]) for item in train_items)
    steady_share = (len(stamps) - 1) / len(stamps) if len(stamps) > 1 else 1.0
    label_tokens_per_s = label_tokens * steady_share / steady_s
    mfu = 4 * (n_body * tokens_per_s + n_head * label_tokens_per_s) / (peak_tflops * 1e12)

    scoring = {}
    first_token = distinct_first_tokens(encoder.label_ids)  # as `bakeoff run` scores fine-tuned models
    for batch in SCORE_BATCHES:
        sample = score_items[: max(batch, 8)] if batch == 1 else score_items[:batch]
        label_log_probs(
            model, sample[:2], encoder.label_ids, tokenizer.pad_token_id, batch, first_token_only=first_token
        )  # warm-up
        latencies_ms = []
        for start in range(0, len(sample), batch):
            sync(device)
            began = time.perf_counter()
            label_log_probs(
                model,
                sample[start : start + batch],
                encoder.label_ids,
                tokenizer.pad_token_id,
                batch,
                first_token_only=first_token,
            )
            sync(device)
            latencies_ms.append(1000 * (time.perf_counter() - began))
        scoring[str(batch)] = {
            "items_per_s": len(sample) / (sum(latencies_ms) / 1000),
            "batches": len(latencies_ms),
            "latency_ms_p50": float(np.percentile(latencies_ms, 50)),
            "latency_ms_p95": float(np.percentile(latencies_ms, 95)),
        }

    arch = introspect(model.config)
    prompt_tokens = round(float(np.mean([len(i.prompt_ids) for i in train_items])))
    workload = estimate.Workload(
        method=method,
        train_examples=len(train_items),
        epochs=1,
        prompt_tokens=prompt_tokens,
        shared_prefix_tokens=shared_prefix_length([i.prompt_ids for i in train_items]) if result.packed else 0,
        label_tokens=round(float(np.mean([len(x) for x in encoder.label_ids]))),
        num_labels=len(encoder.label_ids),
        batch_size=batch_size,
        lora_rank=16,
        lora_targets="all",
        gradient_checkpointing=False,
    )
    tuned = estimate.fine_tune(arch, workload, hardware) if hardware else None
    served = estimate.inference(arch, workload, hardware, batch_sizes=SCORE_BATCHES) if hardware else None
    row = {
        "model": name,
        "method": method,
        "params_total": arch.params_total,
        "matmul_params": n_body + n_head,
        "load_s": load_s,
        "steps": result.steps,
        "packed": result.packed,
        "packed_vs_padded_loss": layouts,
        "train_loss": result.train_loss_per_epoch,
        "step_s": steady_s / max(len(stamps) - 1, 1),
        "mean_step_s_with_first": result.step_time_s / result.steps,
        "train_tokens_per_s": tokens_per_s,
        "mfu": mfu,
        "peak_memory_gb": memory.peak_mb * 2**20 / 1e9,
        "scoring": scoring,
        "estimate_hardware": hardware.key if hardware else None,
        "estimated_step_s": tuned.step_time_s if tuned else None,
        "estimated_memory_gb": tuned.memory_gb if tuned else None,
        "estimated_latency_ms_by_batch": {str(k): v for k, v in served.latency_ms_by_batch.items()} if served else None,
    }
    console.print(
        f"  {name} {method}: {tokens_per_s:.0f} tok/s, MFU {mfu:.1%}, peak {row['peak_memory_gb']:.1f} GB, "
        f"scoring b32 {scoring['32']['items_per_s']:.1f} items/s, packed vs padded loss "
        f"{layouts['packed_loss']:.4f} / {layouts['padded_loss']:.4f}"
    )
    del model
    gc.collect()
    return row


def versions() -> dict:
    found = {}
    for package in ("torch", "transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def main(
    out: Path, models: list[str], steps: int, batch_size: int, dry_run: bool, estimate_gpu: str | None, work: Path
) -> dict:
    console = Console()
    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry-run for the CPU check")
    dtype = torch.float32 if dry_run else torch.bfloat16
    if dry_run:
        torch.set_num_threads(2)
    peak = matmul_peak_tflops(device, dtype, 1024 if dry_run else 8192, min_s=0.2 if dry_run else 1.0)
    hardware = gpu(estimate_gpu) if estimate_gpu else this_machine(device)
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine()
    console.print(
        f"{device_name}: measured {'fp32' if dry_run else 'bf16'} matmul peak {peak:.2f} TFLOP/s; "
        f"estimates for {hardware.key if hardware else 'no catalog match (pass --estimate-gpu)'}; versions "
        f"{versions()}"
    )
    rows = []
    for name in models:
        folder = work / f"{name}{'-cut' if dry_run else ''}"
        if not (folder / "config.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            started = time.perf_counter()
            build(name, folder, device, dtype, dry_run)
            console.print(f"built {name} in {time.perf_counter() - started:.0f} s")
        for method in ("lora", "qlora"):
            try:
                rows.append(trial(name, method, folder, device, dtype, steps, batch_size, peak, hardware, console))
            except Exception as err:  # one failing path must not hide the others' numbers
                console.print(f"[red]{name} {method} failed: {type(err).__name__}: {err}[/red]")
                rows.append({"model": name, "method": method, "error": f"{type(err).__name__}: {err}"})
    table = Table(title=f"gpu_check on {device_name} ({'dry run, CPU' if dry_run else 'CUDA, bf16'})")
    for column in (
        "model",
        "method",
        "tok/s",
        "MFU",
        "peak GB",
        "est. GB",
        "step s",
        "est. step s",
        "b1 p50 ms",
        "b32 items/s",
    ):
        table.add_column(column, justify="left" if column in ("model", "method") else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["model"], row["method"], "failed", "", "", "", "", "", "", "")
            continue
        est_gb = (row["estimated_memory_gb"] or {}).get("total")
        table.add_row(
            row["model"],
            row["method"],
            f"{row['train_tokens_per_s']:.0f}",
            f"{row['mfu']:.1%}",
            f"{row['peak_memory_gb']:.2f}",
            f"{est_gb:.2f}" if est_gb else "-",
            f"{row['step_s']:.3f}",
            f"{row['estimated_step_s']:.3f}" if row["estimated_step_s"] else "-",
            f"{row['scoring']['1']['latency_ms_p50']:.1f}",
            f"{row['scoring']['32']['items_per_s']:.1f}",
        )
    console.print(table)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "dry_run": dry_run,
        "device": device_name,
        "measured_peak_tflops": peak,
        "peak_dtype": str(dtype),
        "versions": versions(),
        "python": sys.version.split()[0],
        "trials": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(payload, indent=1))
    console.print(f"wrote {out / 'gpu_check.json'}")
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["mistral-7b", "llama-3-8b"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument(
        "--estimate-gpu", default=None, help="catalog GPU for the estimates (default: the one matching this device)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/bakeoff-gpu-check"))
    args = parser.parse_args()
    payload = main(args.out, args.models, args.steps, args.batch_size, args.dry_run, args.estimate_gpu, args.work)
    sys.exit(1 if any("error" in row for row in payload["trials"]) else 0)
