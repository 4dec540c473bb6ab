"""Ray's overhead per trial: the same tiny grid under the local runner and under `runner: ray`.

    PYTHONPATH=src python bench/ray_overhead.py [--seeds 2] [--out bench/results/ray_overhead.json]

The grid: a tf-idf baseline and a tiny random-weight Llama LoRA (tests/tiny.py) on the built-in task,
`--seeds` seeds each. Three ways, each in a fresh run folder: the local runner (in this process, the
naive way: no scheduler); Ray with 2 CPUs per trial (one trial at a time with the local runner's threads,
so every metric must be identical to the last bit); Ray with 1 CPU per trial (two at once on a 2-core
machine; metrics agree to float rounding, as thread counts change summation order). Ray starts once
(its start-up is reported apart); its per-trial cost is worker start-up (import torch and bakeoff in a
new process), shipping the task data and the trial's files, and scheduling. Trials this small (seconds)
are the worst case: a real LLM trial runs 10-60 minutes.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tiny.py: tiny random-weight models from real config classes

from report import write_json
from tiny import save_tiny

from bakeoff.config import spec_from_dict
from bakeoff.efficiency.hardware import measure_cpu


def grid_spec(folder: Path, model: Path, seeds: int, cpus: float):
    resources = {"cpus": cpus}
    return spec_from_dict(
        {
            "name": "ray-overhead",
            "task": {"builtin": "support-tickets", "builtin_examples": 300, "split": {"validation_fraction": 0.2}},
            "candidates": [
                {"name": "tfidf", "model": "tfidf-logreg", "resources": resources},
                {"name": "tiny lora", "model": str(model), "method": "lora", "resources": resources},
            ],
            "training": {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "max_validation_items": 10},
            "grid": {"train_sizes": [40], "seeds": list(range(seeds))},
            "evaluation": {
                "max_test_items": 40,
                "max_train_items": 20,
                "bootstrap_samples": 200,
                "latency_repeats": 3,
                "perturbations": [{"name": "typos"}, {"name": "lowercase"}],
                "max_perturbed_items": 20,
            },
            "output": {"dir": str(folder)},
        }
    )


def metrics_of(store) -> dict:
    return {t["trial_id"]: t["result"]["metrics"] for t in store.trials() if t["status"] == "done"}


def max_abs_diff(a, b) -> float:
    """Largest absolute difference between two nested metric records (inf if their shapes differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return max((max_abs_diff(a[k], b[k]) for k in a), default=0.0) if a.keys() == b.keys() else math.inf
    if isinstance(a, list) and isinstance(b, list):
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else math.inf
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b)
    return 0.0 if a == b else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ray_overhead.json")
    args = parser.parse_args()
    console = Console()
    quiet = Console(file=io.StringIO(), width=200)
    torch.set_num_threads(2)
    peak = measure_cpu(2048)["matmul_gflops"]
    console.print(f"fp32 matmul peak (2048x2048, 2 threads): {peak:.0f} GFLOP/s")

    from bakeoff.runners.local import run_spec

    work = Path(tempfile.mkdtemp(prefix="bk-ray-bench-"))
    model = save_tiny(work / "model", "llama", chat=True)
    # Untimed: this process's first-call costs (imports, tokenizer, kernels), which Ray workers pay in the cold row.
    run_spec(grid_spec(work / "warm-up", model, 1, 2), quiet)
    rows = []
    started = time.perf_counter()
    local = run_spec(grid_spec(work / "local", model, args.seeds, 2), quiet)
    local_s = time.perf_counter() - started
    reference = metrics_of(local.store)
    rows.append(
        {
            "runner": "local (in process)",
            "trials": local.ran,
            "wall_s": local_s,
            "in_trial_s": None,
            "max_abs_metric_diff": 0.0,
        }
    )

    import ray

    from bakeoff.runners.ray_runner import run_spec_on_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])
    started = time.perf_counter()
    ray_dir = tempfile.mkdtemp(prefix="bkray-", dir="/tmp")
    ray.init(
        num_cpus=2,
        _temp_dir=ray_dir,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=300 * 2**20,
    )
    ray_start_s = time.perf_counter() - started
    variants = (
        (2, "cold", "ray, 2 CPUs/trial, one at a time, new workers"),
        (2, "warm", "ray, 2 CPUs/trial, one at a time, warm workers"),
        (1, "warm-1", "ray, 1 CPU/trial, two at once, warm workers"),
    )
    for cpus, tag, label in variants:
        started = time.perf_counter()
        outcome = run_spec_on_ray(grid_spec(work / f"ray-{tag}", model, args.seeds, cpus), quiet)
        wall = time.perf_counter() - started
        in_trial = sum(t["result"]["ray"]["trial_s"] for t in outcome.store.trials() if t["status"] == "done")
        rows.append(
            {
                "runner": label,
                "trials": outcome.ran,
                "wall_s": wall,
                "in_trial_s": in_trial,
                "max_abs_metric_diff": max_abs_diff(metrics_of(outcome.store), reference),
            }
        )
    ray.shutdown()
    shutil.rmtree(ray_dir, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"Ray overhead on a tiny grid ({len(reference)} trials), fp32 peak {peak:.0f} GFLOP/s")
    columns = (
        "runner",
        "trials",
        "wall s",
        "s per trial",
        "vs local",
        "in worker s per trial",
        "Ray s per trial",
        "metrics vs local",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "runner" else "right")
    for row in rows:
        trials = max(row["trials"], 1)
        row["s_per_trial"] = row["wall_s"] / trials
        # One at a time, what a trial costs beyond its own work is Ray's: scheduling, worker start, moving data and
        # files.
        sequential = row["in_trial_s"] is not None and "one at a time" in row["runner"]
        row["ray_s_per_trial"] = (row["wall_s"] - row["in_trial_s"]) / trials if sequential else None
        table.add_row(
            row["runner"],
            str(row["trials"]),
            f"{row['wall_s']:.1f}",
            f"{row['s_per_trial']:.1f}",
            f"{row['wall_s'] / local_s:.2f}x",
            "-" if row["in_trial_s"] is None else f"{row['in_trial_s'] / trials:.1f}",
            "-" if row["ray_s_per_trial"] is None else f"{row['ray_s_per_trial']:.1f}",
            "identical" if row["max_abs_metric_diff"] == 0 else f"max diff {row['max_abs_metric_diff']:.1e}",
        )
    console.print(table)
    console.print(f"Ray start-up (ray.init, once per run): {ray_start_s:.1f} s, not in the rows above.")
    write_json(
        console,
        args.out,
        {"peak_gflops": peak, "ray_start_s": ray_start_s, "rows": rows, "seeds": args.seeds},
        table=table,
    )


if __name__ == "__main__":
    main()
