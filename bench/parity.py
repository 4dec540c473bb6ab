"""Behaviour parity: the same runs on the package code of an earlier commit and on this checkout, every metric compared.

    python bench/parity.py [--before dd2f9b9] [--runs demo tickets-extraction] [--override KEY=VALUE ...]

A refactor should change no number a user sees. Each run is made twice, one process each, from a cold run
folder: first with the `src/` tree of `--before` (extracted with `git archive`, put first on PYTHONPATH), then
with this checkout's. `demo` is `bakeoff demo`; any other name is `configs/NAME.yaml` through `bakeoff run`.
`--override` applies to both ways (e.g. `grid.train_sizes=[32]` for a quicker check). Compared: every
numeric leaf of each finished trial's `metrics` in results.json, by trial id and key path, exactly (same
seeds, same threads: the runs fix `runner.threads` to this machine's core count so both sum floats alike);
timings, training histories and efficiency are measurements of speed, not behaviour, and are left out.
Prints the differences (expected: none) and the commands, and writes bench/results/parity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from report import write_json
from rich.console import Console
from rich.table import Table
from source_at import package_source

REPO = Path(__file__).resolve().parents[1]
BEFORE = "dd2f9b9"  # main before issue 35's run-folder, config and task-registry changes


def command_for(run: str, out: Path, overrides: list[str]) -> list[str]:
    threads = f"runner.threads={os.cpu_count() or 1}"
    if run == "demo":
        return [sys.executable, "-m", "bakeoff.cli", "demo", "--out", str(out), threads, *overrides]
    config = REPO / "configs" / f"{run}.yaml"
    return [sys.executable, "-m", "bakeoff.cli", "run", str(config), f"output.dir={out}", threads, *overrides]


def run_way(command: list[str], source: Path) -> dict:
    """One run with the package code under `source`; its progress shows as it goes. Returns results.json."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(command, env=env, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` with PYTHONPATH={source} exited {done.returncode} (output above)")
    out = Path(command[command.index("--out") + 1]) if "--out" in command else None
    if out is None:
        out = Path(next(arg for arg in command if arg.startswith("output.dir=")).split("=", 1)[1])
    return json.loads((out / "results.json").read_text())


def numeric_leaves(value, path: str = "") -> dict[str, float]:
    """Every number under `value`, keyed by its path (`test.accuracy`, `test.accuracy_ci.0`, ...)."""
    if isinstance(value, bool):
        return {path: float(value)}
    if isinstance(value, (int, float)):
        return {path: float(value)}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    leaves: dict[str, float] = {}
    for key, inner in items:
        leaves |= numeric_leaves(inner, f"{path}.{key}" if path else str(key))
    return leaves


def trial_metrics(results: dict) -> dict[str, dict[str, float]]:
    return {
        t["trial_id"]: numeric_leaves((t.get("result") or {}).get("metrics") or {})
        for t in results["trials"]
        if t["status"] == "done"
    }


def compare(before: dict, now: dict) -> dict:
    """Trials and metric paths on both sides, and every difference (a path on one side only counts as one)."""
    a, b = trial_metrics(before), trial_metrics(now)
    differences = []
    for trial in sorted(set(a) | set(b)):
        left, right = a.get(trial, {}), b.get(trial, {})
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                differences.append({"trial": trial, "metric": key, "before": left.get(key), "now": right.get(key)})
    compared = sum(len(set(a.get(t, {})) & set(b.get(t, {}))) for t in set(a) & set(b))
    return {"trials": len(set(a) & set(b)), "metrics_compared": compared, "differences": differences}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="commit whose package code is the 'before' way")
    parser.add_argument("--runs", nargs="+", default=["demo", "tickets-extraction"])
    parser.add_argument("--override", action="append", default=[], help="KEY=VALUE for both ways (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "parity.json")
    args = parser.parse_args()
    console = Console()
    rows, commands = {}, []
    with tempfile.TemporaryDirectory(prefix="bakeoff-parity-") as tmp:
        old_source = package_source(args.before, Path(tmp) / "before")
        for run in args.runs:
            results = {}
            for way, source in (("before", old_source), ("now", REPO / "src")):
                command = command_for(run, Path(tmp) / f"{run}-{way}", args.override)
                commands.append(f"PYTHONPATH={source} {' '.join(command)}")
                console.print(f"[bold]{run}, {way}[/bold]: {commands[-1]}")
                results[way] = run_way(command, source)
            rows[run] = compare(results["before"], results["now"])
    table = Table(title=f"metrics in results.json, {args.before} against this checkout")
    for column in ("run", "trials", "metrics compared", "differences"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run, row in rows.items():
        table.add_row(run, str(row["trials"]), str(row["metrics_compared"]), str(len(row["differences"])))
    console.print(table)
    for run, row in rows.items():
        for diff in row["differences"][:20]:
            console.print(f"  {run} {diff['trial']} {diff['metric']}: {diff['before']} -> {diff['now']}")
    write_json(console, args.out, {"before": args.before, "runs": rows, "commands": commands}, table=table)
    if any(row["differences"] for row in rows.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
