"""Where a run's time went, by trial and phase, from its stored timings; scaled to another machine class.

    python bench/demo_budget.py runs/demo --peak-gflops 159 [--target-gflops 100] [--out bench/results/demo_budget.json]

Reads RUN_DIR/results.sqlite (what `bakeoff demo` or `bakeoff run` stored) and splits each trial's wall
time (its start to its finish in the store) into: model load (GGUF conversion included, the first time),
fine-tune (the training loop with its validation passes), the latency/throughput measurement, then the
evaluation phases (test set, training items, validation, robustness: perturbations and paraphrases,
out of scope) and what is left (saving, merging, baselines' fit, metrics). Totals per phase follow.

Scaling: `--peak-gflops` is the fp32 matmul peak measured on the machine that made the run (measure it in
the same session: a 2048x2048 loop at the run's threads); every phase is multiplied by
peak / `--target-gflops`. That assumes time is inversely proportional to matmul peak, which holds for the
matmul-bound LLM phases and overstates the slower machine's time for the rest (I/O, Python): an upper-end
estimate for a machine whose other parts are not slower in the same proportion.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import datetime
from pathlib import Path

from report import write_json
from rich.console import Console
from rich.table import Table

PHASES = ("load", "fine_tune", "latency", "test", "train", "validation", "robustness", "out_of_scope", "other")


def trial_phases(wall_s: float, timings: dict) -> dict:
    evaluation = timings.get("evaluation_phase_s") or {"test": timings.get("inference_s") or 0.0}
    phases = {
        "load": timings.get("load_s") or 0.0,
        "fine_tune": timings.get("fine_tune_s") or 0.0,
        "latency": timings.get("latency_measure_s") or 0.0,
    } | {name: evaluation.get(name, 0.0) for name in ("test", "train", "validation", "robustness", "out_of_scope")}
    phases["other"] = max(wall_s - sum(phases.values()), 0.0)
    return phases


def read_run(run_dir: Path) -> list[dict]:
    with sqlite3.connect(f"file:{run_dir / 'results.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT trial_id, status, started_at, finished_at, result FROM trials ORDER BY started_at"
        ).fetchall()
    trials = []
    for trial_id, status, started, finished, result in rows:
        if status != "done" or not started or not finished:
            continue
        wall_s = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
        timings = json.loads(result)["timings"]
        trials.append({"trial_id": trial_id, "wall_s": wall_s, "phases_s": trial_phases(wall_s, timings)})
    return trials


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--peak-gflops", type=float, required=True, help="fp32 matmul peak measured with the run")
    parser.add_argument("--target-gflops", type=float, default=100.0, help="the machine class to scale to")
    parser.add_argument("--out", type=Path, default=Path("bench/results/demo_budget.json"))
    args = parser.parse_args()
    console = Console()
    trials = read_run(args.run_dir)
    scale = args.peak_gflops / args.target_gflops
    table = Table(title=f"{args.run_dir}: seconds by trial and phase (measured at {args.peak_gflops:.0f} GFLOP/s)")
    table.add_column("trial")
    for phase in (*PHASES, "wall", f"wall at {args.target_gflops:.0f}"):
        table.add_column(phase, justify="right")
    totals = dict.fromkeys(PHASES, 0.0)
    for trial in trials:
        for phase in PHASES:
            totals[phase] += trial["phases_s"][phase]
        cells = [f"{trial['phases_s'][phase]:.0f}" for phase in PHASES]
        table.add_row(trial["trial_id"], *cells, f"{trial['wall_s']:.0f}", f"{trial['wall_s'] * scale:.0f}")
    wall = sum(t["wall_s"] for t in trials)
    table.add_row("total", *(f"{totals[p]:.0f}" for p in PHASES), f"{wall:.0f}", f"{wall * scale:.0f}")
    console.print(table)
    console.print(
        f"trials' wall time {wall / 60:.1f} min here; {wall * scale / 60:.1f} min scaled to "
        f"{args.target_gflops:.0f} GFLOP/s (x{scale:.2f}, time inversely proportional to the matmul peak)"
    )
    write_json(
        console,
        args.out,
        {
            "run_dir": str(args.run_dir),
            "peak_gflops": args.peak_gflops,
            "target_gflops": args.target_gflops,
            "trials": trials,
            "totals_s": totals,
            "wall_s": wall,
            "wall_s_at_target": wall * scale,
        },
        table=table,
    )


if __name__ == "__main__":
    main()
