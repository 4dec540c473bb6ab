"""A whole SmolLM2-135M zero-shot trial on 20 BANKING77 intents, on the code before issue 20 and now, in one run.

    python bench/zero_shot_trial.py [--before 298ce2c] [--test-items 300] [--out bench/results/zero_shot_trial.json]

Issue 20 saw this trial (20 intents, 300 test items plus out-of-scope items) take 15.5 min on a ~100 GFLOP/s
machine, nearly all of it scoring multi-token label continuations for every perturbation. This bench runs the
same config through `bakeoff run` twice, one process each: first with the package source of the `--before`
commit (extracted with `git archive`, put first on PYTHONPATH), then with this checkout's. Both use the same
converted-model cache (the conversion is excluded: it is warmed first) and their own defaults, so "now" is
what a user gets today: labels scored as a trie, a perturbation that leaves a text unchanged reuses its clean
score, throughput taken from the test pass, batch-1 latency under `evaluation.latency_budget_s`.

Reported per way: the trial's own time (the store's started_at to finished_at), the process's wall time, test
accuracy with its CI, and the fp32 matmul peak measured just before. The two ways must give the same test
accuracy (same scores, same items): the bench says so, or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch
import yaml
from label_trie import INSTRUCTION, LABELS, matmul_peak_gflops
from report import print_targets, write_json
from rich.console import Console
from rich.table import Table
from source_at import package_source

REPO = Path(__file__).resolve().parents[1]

OUT_OF_SCOPE = ["apple_pay_or_google_pay", "country_support", "age_limit"]
BEFORE = "298ce2c"  # main just before issue 20's speed branch (trie, budgets, reuse) was merged


def trial_config(folder: Path, test_items: int) -> dict:
    return {
        "name": "zero-shot-20-intents",
        "task": {
            "data": {
                "path": str(folder / "train.csv"),
                "test_path": str(folder / "test.csv"),
                "text_column": "text",
                "label_column": "category",
                "labels": LABELS,
                "out_of_scope_labels": OUT_OF_SCOPE,
            },
            "instruction": INSTRUCTION,
            "split": {"validation_fraction": 0.1, "seed": 0},
        },
        "candidates": [{"name": "smollm2-135m zero-shot", "model": "smollm2-135m", "method": "zero-shot"}],
        "grid": {"train_sizes": [50], "seeds": [0]},
        "evaluation": {"max_test_items": test_items},
    }


def run_way(config: Path, out: Path, source: Path) -> dict:
    """One `bakeoff run` of `config` with the package code under `source`; its progress lines show as it goes."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "bakeoff.cli", "run", str(config), f"output.dir={out}"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` with PYTHONPATH={source} exited {done.returncode} (output above)")
    with sqlite3.connect(out / "results.sqlite") as db:
        row = db.execute("SELECT started_at, finished_at, result FROM trials WHERE status='done'").fetchone()
    if row is None:
        raise SystemExit(f"no finished trial in {out} (output above)")
    trial_s = (datetime.fromisoformat(row[1]) - datetime.fromisoformat(row[0])).total_seconds()
    test = json.loads(row[2])["metrics"]["test"]
    return {
        "trial_s": trial_s,
        "process_s": wall,
        "items": test["items"],
        "accuracy": test["accuracy"],
        "accuracy_ci": test["accuracy_ci"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default=BEFORE, help="Commit whose package code is the 'before' way.")
    parser.add_argument("--test-items", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/results/zero_shot_trial.json"))
    args = parser.parse_args()
    console = Console()
    folder = Path(os.environ.get("BAKEOFF_BANKING77", REPO.parent / "shared" / "datasets" / "banking77"))
    if not (folder / "test.csv").is_file():
        raise SystemExit(f"no BANKING77 at {folder}; set BAKEOFF_BANKING77")
    from bakeoff.models.load import converted_folder
    from bakeoff.models.sources import resolve_source

    converted_folder(resolve_source("smollm2-135m"))  # both ways find the converted weights cached
    revision = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", args.before], check=True, capture_output=True, text=True
    ).stdout.strip()
    now = subprocess.run(  # "-dirty" when the working tree has uncommitted changes: they are what runs
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"], check=True, capture_output=True, text=True
    ).stdout.strip()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bakeoff-zs-") as scratch:
        scratch = Path(scratch)
        config = scratch / "config.yaml"
        config.write_text(yaml.safe_dump(trial_config(folder, args.test_items), sort_keys=False))
        ways = {f"before ({revision})": package_source(args.before, scratch / "before"), f"now ({now})": REPO / "src"}
        for name, source in ways.items():
            peak = matmul_peak_gflops()
            console.print(f"{name}: fp32 matmul peak {peak:.0f} GFLOP/s; running the trial ...")
            results[name] = run_way(config, scratch / f"run-{len(results)}", source)
            results[name]["matmul_peak_gflops"] = peak
            console.print(f"  trial {results[name]['trial_s']:.0f} s, process {results[name]['process_s']:.0f} s")
    (before, after) = results.values()
    ratio = before["trial_s"] / after["trial_s"]
    table = Table(
        title=f"SmolLM2-135M zero-shot, {len(LABELS)} BANKING77 intents, {args.test_items} test items, "
        f"{torch.get_num_threads()} threads"
    )
    for column in ("code", "matmul peak GFLOP/s", "trial s", "process s", "test acc % [95% CI]"):
        table.add_column(column)
    for name, way in results.items():
        low, high = way["accuracy_ci"]
        table.add_row(
            name,
            f"{way['matmul_peak_gflops']:.0f}",
            f"{way['trial_s']:.0f}",
            f"{way['process_s']:.0f}",
            f"{100 * way['accuracy']:.1f} [{100 * low:.1f}, {100 * high:.1f}]",
        )
    console.print(table)
    console.print(f"trial time before / now: {ratio:.2f}x")
    same = before["items"] == after["items"] and abs(before["accuracy"] - after["accuracy"]) < 1e-9
    print_targets(console, {"same test accuracy on the same items both ways": same})
    write_json(
        console,
        args.out,
        {
            "labels": len(LABELS),
            "out_of_scope_labels": OUT_OF_SCOPE,
            "test_items": args.test_items,
            "threads": torch.get_num_threads(),
            "ways": results,
            "ratio_trial_s": ratio,
        },
        table=table,
    )
    if not same:
        raise SystemExit("the two ways disagree on test accuracy: the scores changed, not only the speed")


if __name__ == "__main__":
    main()
