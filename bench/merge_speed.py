"""Folding a trained LoRA adapter into its CPU base weights: in place on the loaded weights vs copied first.

    python bench/merge_speed.py [--models smollm2-135m gemma3-270m] [--rounds 3] [--out bench/results/merge_speed.json]

Every LoRA trial merges its adapter before scoring (`recipes/trial.py::merge_for_inference`), and `bakeoff
serve` merges the adapter it loads (`models/trained.py::with_adapter`). A model loaded from safetensors on
CPU holds its weights as a copy-on-write view of the file's memory map, so peft's in-place merge faults
and copies every page it writes. The naive way is peft's `merge_adapter()` as is; the owned way is
`own_adapted_weights` (a plain copy of each adapted base weight) and then the same merge. Each round loads
the model fresh from bakeoff's cache (converted once), adds the demo's LoRA (r16, all linear layers) with
random non-zero B, runs one forward so the weights are paged in as after training, and merges one way;
the two ways alternate. The merged weights of the two ways are compared tensor by tensor: the copy must
change nothing but the time. The fp32 matmul peak is measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from label_trie import matmul_peak_gflops
from peft import LoraConfig, get_peft_model
from report import write_json
from rich.console import Console
from rich.table import Table

from bakeoff.models.load import LoadOptions, load_model
from bakeoff.models.sources import resolve_source
from bakeoff.models.trained import own_adapted_weights


def merged_once(name: str, way: str) -> tuple[float, dict[str, torch.Tensor]]:
    """Seconds to merge, and the merged state, for one fresh load of `name` merged `way`."""
    model = load_model(resolve_source(name), LoadOptions(dtype=torch.float32, device="cpu"))
    torch.manual_seed(0)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(model, config)
    with torch.no_grad():
        model(input_ids=torch.arange(1, 33).unsqueeze(0))  # weights paged in, as after training
    started = time.perf_counter()
    if way == "owned":
        own_adapted_weights(model)
    model.merge_adapter()
    seconds = time.perf_counter() - started
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" not in k}
    return seconds, state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/merge_speed.json"))
    args = parser.parse_args()
    console = Console()
    peak = matmul_peak_gflops()
    threads = torch.get_num_threads()
    table = Table(title=f"LoRA merge into CPU base weights ({threads} threads, peak {peak:.0f} GFLOP/s)")
    for column in ("model", "in place s (median)", "copied first s (median)", "speed-up", "same weights"):
        table.add_column(column)
    results = {}
    for name in args.models:
        times: dict[str, list[float]] = {"naive": [], "owned": []}
        states = {}
        for _ in range(args.rounds):
            for way in ("naive", "owned"):
                seconds, states[way] = merged_once(name, way)
                times[way].append(seconds)
        naive, owned = states["naive"], states["owned"]
        same = naive.keys() == owned.keys() and all(torch.equal(naive[k], owned[k]) for k in naive)
        speedup = statistics.median(times["naive"]) / statistics.median(times["owned"])
        table.add_row(
            name,
            f"{statistics.median(times['naive']):.2f}",
            f"{statistics.median(times['owned']):.2f}",
            f"{speedup:.1f}x",
            "yes" if same else "NO",
        )
        results[name] = {"seconds": times, "speedup": speedup, "same_weights": same}
    console.print(table)
    write_json(
        console,
        args.out,
        {"fp32_peak_gflops": peak, "threads": torch.get_num_threads(), "models": results},
        table=table,
    )
    if not all(r["same_weights"] for r in results.values()):
        raise SystemExit("the two ways merged different weights")


if __name__ == "__main__":
    main()
