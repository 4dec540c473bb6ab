"""Real 7-8B shapes on this CPU: one LoRA and one QLoRA trial of each through `bakeoff run`, measured vs estimated.

    python bench/real_shapes.py [--models mistral-7b llama-3-8b mixtral-8x7b] [--layers 1] [--work DIR]
                                [--out bench/results/real_shapes.json]

Each model is its catalog config (Mistral-7B v0.1, Llama-3-8B, Mixtral-8x7B) cut to `--layers` decoder
layers at full width and full vocabulary, with random weights, saved once as a safetensors folder
in bf16 as the real checkpoints ship (`--checkpoint-dtype`), with a small BPE tokenizer (token ids are below
every vocabulary, and the embedding and LM head keep their full size). On this CPU bakeoff computes in
float32, so loading converts the weights: nothing stays a view of the memory-mapped file, as with real
checkpoints. (A float32 checkpoint would stay mapped: its LM head and the float32 source of every layer
QLoRA quantized count in RSS for the life of the process, and only looked-up embedding rows do.)
Then every (model, method) is its own `bakeoff run` subprocess, one at a time: a few
built-in tickets, one epoch, first-token scoring on a few test items. The naive way beside QLoRA is
LoRA on the same float32 base, in the same run.

Per trial: peak memory (RSS sampled inside the trial, the fine-tune's own peak, the process's RSS before the
trial loaded its model, and the subprocess's max RSS from the kernel); the estimate is compared with the
fine-tune's peak above that starting RSS (the interpreter and libraries are no part of a training state),
training step time, and what bakeoff's estimator said for the same cut model on this machine
(`efficiency.estimated_memory_gb`, `estimated_step_s` in the trial record, from
`efficiency.compare.measured_vs_estimated`). Ratios are reported as they are: the estimator is owned
elsewhere. Memory is shared with other work on this machine: check `free -g` first.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from report import write_json

MODELS = ("mistral-7b", "llama-3-8b", "mixtral-8x7b")
METHODS = ("lora", "qlora")


def build(name: str, layers: int, folder: Path, dtype: str = "bfloat16") -> dict:
    """Save the cut model (random weights, stored in `dtype` as the real checkpoints ship: bf16) and a
    tokenizer; returns its parameter counts."""
    import torch
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny import tiny_tokenizer

    from bakeoff.efficiency.catalog import catalog_config

    config = catalog_config(name)
    config.num_hidden_layers = layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:layers]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    params = sum(p.numel() for p in model.parameters())
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tiny_tokenizer(chat=True).save_pretrained(partial)
    del model
    gc.collect()
    partial.rename(folder)
    return {"params": params}


def run_config(name: str, method: str, folder: Path, run_dir: Path) -> dict:
    return {
        "name": f"real-shapes-{name}-{method}",
        "task": {"builtin": "support-tickets", "builtin_examples": 200},
        "candidates": [{"name": f"{name} {method}", "model": str(folder), "method": method}],
        "training": {
            "epochs": 1,
            "batch_size": 4,
            "learning_rate": 2e-4,
            "max_validation_items": 4,
            "lora": {"r": 16, "alpha": 32, "targets": "all"},
        },
        "grid": {"train_sizes": [12]},
        "evaluation": {
            "max_test_items": 10,
            "max_train_items": 0,
            "bootstrap_samples": 100,
            "perturbations": [],
            "max_validation_items": 10,
            "max_out_of_scope_items": 4,
            "latency_repeats": 3,
            "batch_size": 8,
            "scoring": "auto",
        },
        "output": {"dir": str(run_dir)},
    }


def run_trial(name: str, method: str, folder: Path, work: Path, console: Console) -> dict:
    run_dir = work / f"run-{name}-{method}"
    shutil.rmtree(run_dir, ignore_errors=True)
    config = work / f"{name}-{method}.yaml"
    config.write_text(yaml.safe_dump(run_config(name, method, folder, run_dir)))
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "bakeoff.cli", "run", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(work / f"{name}-{method}.log", "w"),
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall_s = time.perf_counter() - started
    max_rss_gb = usage.ru_maxrss * 1024 / 1e9  # Linux reports KiB
    (run_dir / "process.json").write_text(json.dumps({"wall_s": wall_s, "max_rss_gb": max_rss_gb}))
    if os.waitstatus_to_exitcode(status) != 0:
        tail = (work / f"{name}-{method}.log").read_text()[-1500:]
        console.print(f"[red]{name} {method} failed[/red]\n{tail}")
        return {"model": name, "method": method, "ok": False, "error": tail, "wall_s": wall_s, "max_rss_gb": max_rss_gb}
    return collect(name, method, run_dir, wall_s, max_rss_gb)


def collect(name: str, method: str, run_dir: Path, wall_s: float | None, max_rss_gb: float | None) -> dict:
    """One finished trial's row, from its run folder."""
    stored = json.loads((run_dir / "results.json").read_text())
    trial = stored["trials"][0]["result"]
    training, efficiency, timings = trial["training"], trial["efficiency"] or {}, trial["timings"]
    estimated = current_memory_estimate(trial["model"]["architecture"], efficiency)
    peak_gb = timings["peak_memory_mb"] * 2**20 / 1e9
    held_gb = efficiency.get("measured_memory_gb")  # the fine-tune's peak above the process before loading
    before_mb = training.get("memory_before_load_mb")
    return {
        "model": name,
        "method": method,
        "ok": True,
        "wall_s": wall_s,
        "max_rss_gb": max_rss_gb,
        "model_folder": stored["run"]["spec"]["candidates"][0]["model"],  # its name ends in the checkpoint dtype
        "params_total": trial["model"]["architecture"]["params_total"],
        "trial_peak_memory_gb": peak_gb,
        "estimated_memory_gb": estimated,
        "memory_ratio_measured_over_estimated": peak_gb / estimated["total"] if estimated.get("total") else None,
        # The fine-tune alone: the training state the estimator prices, without loading's transient copies.
        "fine_tune_peak_memory_gb": training["peak_memory_mb"] * 2**20 / 1e9
        if training.get("peak_memory_mb")
        else None,
        "memory_before_load_gb": before_mb * 2**20 / 1e9 if before_mb else None,
        "fine_tune_held_memory_gb": held_gb,
        "fine_tune_memory_ratio": held_gb / estimated["total"] if held_gb and estimated.get("total") else None,
        "estimated_memory_gb_when_run": efficiency.get("estimated_memory_gb"),
        "steps": training["steps"],
        "step_s": training["step_time_s"] / training["steps"],
        "estimated_step_s": efficiency.get("estimated_step_s"),
        "step_ratio_measured_over_estimated": efficiency.get("step_ratio_measured_over_estimated"),
        "train_tokens_per_s": timings["train_tokens_per_s"],
        "load_s": timings["load_s"],
        "latency_ms_p50": timings.get("latency_ms_p50"),
        "train_loss": training["train_loss_per_epoch"],
        "packed": training["packed"],
    }


def current_memory_estimate(architecture: dict, efficiency: dict) -> dict:
    """The memory estimate for the trial's own model, workload and hardware (all stored in its record) by the
    estimator as it is now, so rows collected from older runs compare against the current formulas."""
    from bakeoff.efficiency.estimate import Workload, fine_tune_memory
    from bakeoff.efficiency.hardware import Hardware
    from bakeoff.efficiency.introspect import Architecture

    if not efficiency.get("workload"):
        return {}
    return fine_tune_memory(
        Architecture(**architecture), Workload(**efficiency["workload"]), Hardware(**efficiency["hardware"])
    )


def main(
    models: list[str],
    layers: int,
    work: Path,
    out: Path,
    collect_only: bool = False,
    checkpoint_dtype: str = "bfloat16",
) -> dict:
    import torch

    from bakeoff.efficiency.hardware import local_cpu

    console = Console()
    torch.set_num_threads(2)
    cpu = local_cpu()
    console.print(f"CPU fp32 matmul peak {cpu.peak_tflops * 1000:.0f} GFLOP/s; layers kept: {layers}")
    work.mkdir(parents=True, exist_ok=True)
    rows, builds = [], {}
    if collect_only:  # rows from earlier runs' folders, e.g. after stopping a long grid
        for name in models:
            for method in METHODS:
                run_dir = work / f"run-{name}-{method}"
                if (run_dir / "results.json").is_file():
                    process = (
                        json.loads((run_dir / "process.json").read_text())
                        if (run_dir / "process.json").is_file()
                        else {}
                    )
                    rows.append(collect(name, method, run_dir, process.get("wall_s"), process.get("max_rss_gb")))
        models = []
    for name in models:
        folder = work / f"{name}-{layers}l-{checkpoint_dtype}"
        if not (folder / "config.json").is_file():
            started = time.perf_counter()
            # A subprocess, so the fp32 build's memory is returned before the trials start.
            code = (
                f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); from real_shapes import "
                "build; "
                f"print(json.dumps(build({name!r}, {layers}, __import__('pathlib').Path({str(folder)!r}), "
                f"{checkpoint_dtype!r})))"
            )
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                console.print(f"[red]building {name} failed[/red]\n{done.stderr[-1500:]}")
                continue
            builds[name] = json.loads(done.stdout.strip().splitlines()[-1]) | {"build_s": time.perf_counter() - started}
        for method in METHODS:
            console.print(f"{name} {method} ...")
            rows.append(run_trial(name, method, folder, work, console))
            console.print(f"  {rows[-1]['wall_s']:.0f} s, max RSS {rows[-1]['max_rss_gb']:.1f} GB")
    table = Table(
        title=f"Real shapes, {layers} decoder layer(s), full width and vocabulary, random weights (CPU, fp32 compute)"
    )
    for column in (
        "model",
        "method",
        "params",
        "peak GB",
        "tune peak GB",
        "before load GB",
        "est. GB",
        "(tune - before)/est",
        "step s",
        "est. step s",
        "meas/est",
        "tok/s",
        "wall s",
    ):
        table.add_column(column, justify="left" if column in ("model", "method") else "right")
    for row in rows:
        if not row["ok"]:
            table.add_row(row["model"], row["method"], *["failed"] + [""] * 10)
            continue
        est = row["estimated_memory_gb"].get("total")
        table.add_row(
            row["model"],
            row["method"],
            f"{row['params_total'] / 1e9:.2f}B",
            f"{row['trial_peak_memory_gb']:.2f}",
            f"{row['fine_tune_peak_memory_gb']:.2f}" if row.get("fine_tune_peak_memory_gb") else "-",
            f"{row['memory_before_load_gb']:.2f}" if row.get("memory_before_load_gb") else "-",
            f"{est:.2f}" if est else "-",
            f"{row['fine_tune_memory_ratio']:.2f}" if row.get("fine_tune_memory_ratio") else "-",
            f"{row['step_s']:.1f}",
            f"{row['estimated_step_s']:.2f}" if row["estimated_step_s"] else "-",
            f"{row['step_ratio_measured_over_estimated']:.1f}" if row["step_ratio_measured_over_estimated"] else "-",
            f"{row['train_tokens_per_s']:.0f}",
            f"{row['wall_s']:.0f}" if row["wall_s"] else "-",
        )
    console.print(table)
    return write_json(
        console,
        out,
        {
            "cpu_matmul_gflops": cpu.peak_tflops * 1000,
            "layers": layers,
            "checkpoint_dtype": checkpoint_dtype,
            "builds": builds,
            "trials": rows,
            "torch_threads": 2,
        },
        table=table,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bakeoff-real-shapes"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/real_shapes.json"))
    parser.add_argument("--collect", action="store_true", help="only tabulate the run folders already under --work")
    parser.add_argument(
        "--checkpoint-dtype",
        default="bfloat16",
        choices=["bfloat16", "float32"],
        help="dtype the cut model is saved in (bf16: as the real checkpoints ship; the CPU run computes in fp32)",
    )
    args = parser.parse_args()
    main(args.models, args.layers, args.work, args.out, args.collect, args.checkpoint_dtype)
