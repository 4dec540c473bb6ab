"""Measurements as data: record a command's JSON output under bench/results/, and render the docs' tables from it.

A figure the docs quote as a current measurement lives in a committed JSON file that a real command wrote,
with the command, the date, the machine and its fp32 matmul peak read before and after; the page holds the
table between two markers, and this script writes it from that file (tests/test_docs.py fails when a table
and its file disagree, or a table has no file).

    # run COMMAND (which prints JSON), and store it with its provenance as bench/results/NAME.json
    .venv/bin/python scripts/measurements.py record estimate-a10g-qlora -- \\
        bakeoff estimate mistral-7b llama-3-8b mixtral-8x7b --gpu a10g --method qlora \\
        --train-examples 500 --epochs 3 --sla-p95-ms 200 --load 50 --json
    # run a bakeoff run that writes RUN_DIR, and store its results.json with the provenance as bench/results/NAME.json
    .venv/bin/python scripts/measurements.py record demo --run-dir /tmp/demo-run -- bakeoff demo --out /tmp/demo-run
    # rewrite every marked table in docs/ and README.md from its file
    .venv/bin/python scripts/measurements.py render --write

In a page:  <!-- measured:NAME -->  (the table, written by this script)  <!-- /measured:NAME -->
A stored run has views: <!-- measured:demo:quality --> ... <!-- /measured:demo:quality --> (also `efficiency`,
`robustness`, `recommendation`, `time`); a bench's file renders the table it printed; an estimate's, the table
`bakeoff estimate` prints.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "src"))

BLOCK = re.compile(
    r"(<!-- measured:(?P<name>[\w.-]+)(?::(?P<view>[\w-]+))? -->\n)(?P<body>.*?)"
    r"(<!-- /measured:(?P=name)(?::(?P=view))? -->)",
    re.S,
)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def machine() -> dict:
    """What the numbers were measured on: the CPU, its cores, the OS, Python and the code's commit."""
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def matmul_peak() -> dict:
    """fp32 2048x2048 matmul GFLOP/s at the process's threads (bakeoff's own measurement, best of 5)."""
    from bakeoff.efficiency.hardware import measure_cpu

    measured = measure_cpu(size=2048)
    return {"gflops": round(measured["matmul_gflops"], 1), "threads": measured["threads"], "size": 2048}


def record(name: str, command: list[str], run_dir: Path | None = None, kind: str | None = None) -> Path:
    """Run `command` between two peak readings; write bench/results/NAME.json. Its result is what the command
    printed (one JSON document), or with `run_dir` the results.json the command wrote there."""
    before = matmul_peak()
    started = datetime.datetime.now(datetime.timezone.utc)
    result = subprocess.run(command, cwd=ROOT, stdout=None if run_dir else subprocess.PIPE, text=True, check=True)
    ended = datetime.datetime.now(datetime.timezone.utc)
    after = matmul_peak()
    shown = [Path(command[0]).name if command[0].endswith("/bakeoff") else command[0], *command[1:]]
    data = {
        "name": name,
        "kind": kind or ("run" if run_dir else (shown[1] if shown[0] == "bakeoff" else shown[0])),
        "command": shlex.join(shown),
        "date": started.isoformat(timespec="seconds"),
        "wall_s": round((ended - started).total_seconds(), 1),
        "machine": machine(),
        "fp32_matmul_peak": {"before": before, "after": after},
        "result": json.loads((run_dir / "results.json").read_text() if run_dir else result.stdout),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def _markdown_grid(columns: list[str], rows: list[list[str]]) -> str:
    """A markdown table; columns may repeat (a bench's table can have two "raw" columns)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown_table(rows: list[dict[str, str]], drop: tuple[str, ...] = ()) -> str:
    columns = [column for column in rows[0] if column not in drop]
    return _markdown_grid(columns, [[row[column] for column in columns] for row in rows])


def _render_estimate(data: dict) -> str:
    """The table `bakeoff estimate` prints, from its --json output (the same row function as the CLI's)."""
    from bakeoff.report.summary import estimate_row

    return _markdown_table([estimate_row(record) for record in data["result"]["estimates"]], drop=("GPU",))


def _render_bench(data: dict) -> str:
    """The table a bench under bench/ printed, as `bench/report.py` stored it (title, columns, rows)."""
    table = data["table"]
    title = f"**{table['title']}**\n\n" if table.get("title") else ""
    return title + _markdown_grid(table["columns"], table["rows"])


def _trials(data: dict):
    from bakeoff.results import RunResults

    return RunResults.from_stored(data["result"])


def _render_run(data: dict, view: str) -> str:
    """A stored run's table: `quality` (what each candidate scored, the README's demo table), `robustness`,
    `efficiency` (measured against estimated), `recommendation` (its rationale, quoted) or `time` (the run's
    wall time and its scaling to 100 GFLOP/s)."""
    from bakeoff.report import summary, task_tables

    run = _trials(data)
    kind = run.run.task_type
    if view == "time":
        return _run_time(data)
    if view == "recommendation":
        import textwrap

        rationale = run.recommendation.rationale if run.recommendation else "(no recommendation stored)"
        return "\n".join("> " + line for line in textwrap.wrap(rationale, 105))
    if view == "robustness":
        table = (
            summary.robustness_rows(run.trials)
            if kind == "classification"
            else task_tables.robustness_rows(run.trials, kind)
        )
        return _markdown_table(table)
    if view == "efficiency":
        return _markdown_table(summary.efficiency_rows(run.trials))
    if kind != "classification":
        return _markdown_table(task_tables.quality_rows(run.trials, kind), drop=("seed", "status"))
    robustness = {(row["candidate"], row["train n"]): row for row in summary.robustness_rows(run.trials)}
    rows = []
    for row in summary.rows(run.trials):
        extra = robustness.get((row["candidate"], row["train n"]), {})
        perturbed = extra.get("perturbed acc (worst)", "-").split(" (")[0]
        rows.append(
            {
                "candidate": row["candidate"],
                "method": row["method"],
                "train n": row["train n"],
                "test acc % [95% CI]": row["test acc % [95% CI]"],
                "train acc %": row["train acc %"],
                "perturbed acc": perturbed,
                "paraphrase acc": extra.get("paraphrase acc", "-"),
                "OOS AUROC": extra.get("OOS AUROC", "-"),
                "fine-tune s": row["fine-tune s"],
            }
        )
    return _markdown_table(rows)


def _run_time(data: dict, slower_class_gflops: float = 100.0) -> str:
    """Wall time, the peak readings around it, and the time scaled to the slower machine class."""
    peak = data["fp32_matmul_peak"]
    readings = sorted(p["gflops"] for p in (peak["before"], peak["after"]))
    minutes = data["wall_s"] / 60
    scaled = [f"{minutes * reading / slower_class_gflops:.1f}" for reading in readings]
    return _markdown_table(
        [
            {
                "wall": f"{int(data['wall_s'] // 60)} min {int(data['wall_s'] % 60):02d} s",
                "fp32 matmul peak, GFLOP/s": " / ".join(f"{r:.0f}" for r in readings),
                f"scaled to {slower_class_gflops:.0f} GFLOP/s (time x peak / {slower_class_gflops:.0f})": (
                    f"{scaled[0]} to {scaled[1]} min"
                ),
            }
        ]
    )


def _render_published(data: dict) -> str:
    """The estimator beside published measurements (`python -m bakeoff.efficiency.reference --json`)."""
    from bakeoff.efficiency.reference import markdown_table

    return markdown_table(data["result"])


RENDERERS = {"estimate": _render_estimate, "bench": _render_bench, "run": _render_run, "published": _render_published}


def render_block(name: str, view: str | None = None) -> str:
    """The text between a page's markers for bench/results/NAME.json: where it came from, then the table."""
    path = RESULTS / f"{name}.json"
    data = json.loads(path.read_text())
    peak = data["fp32_matmul_peak"]
    source = f"*From `bench/results/{name}.json`"
    provenance = (
        f"{source}: `{data['command']}`, {data['date'][:10]}, "
        f"{data['machine']['cpu']} ({data['machine']['cores']} cores; fp32 matmul "
        f"{peak['before']['gflops']:.1f} GFLOP/s before, {peak['after']['gflops']:.1f} after).*"
    )
    renderer = RENDERERS[data["kind"]]
    table = renderer(data, view or "quality") if data["kind"] == "run" else renderer(data)
    return f"{provenance}\n\n{table}\n"


def blocks() -> list[tuple[Path, str]]:
    """(page, name) of every marked table in docs/ and README.md."""
    return [(page, match["name"]) for page in _pages() for match in BLOCK.finditer(page.read_text())]


def _pages() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def _rendered(page: Path) -> str:
    return BLOCK.sub(lambda m: m[1] + render_block(m["name"], m["view"]) + m[5], page.read_text())


def missing_files() -> list[str]:
    return [f"{page.relative_to(ROOT)}: {name}" for page, name in blocks() if not (RESULTS / f"{name}.json").is_file()]


def stale_pages() -> list[str]:
    """Pages whose marked tables differ from what their files render (empty when every table is current)."""
    pages = sorted({page for page, name in blocks() if (RESULTS / f"{name}.json").is_file()})
    return [str(page.relative_to(ROOT)) for page in pages if _rendered(page) != page.read_text()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="what", required=True)
    recorder = commands.add_parser("record", help="run a command that prints JSON; store it as bench/results/NAME.json")
    recorder.add_argument("name")
    recorder.add_argument(
        "--kind", help="how its table renders: estimate, run, bench, published (default: from the command)"
    )
    recorder.add_argument("--run-dir", type=Path, help="the run folder the command writes; its results.json is stored")
    recorder.add_argument("command", nargs="*", help="after `--`: the command to run")
    renderer = commands.add_parser("render", help="check (or --write) the marked tables in docs/")
    renderer.add_argument("--write", action="store_true")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # options before `--`, the command after it
    args = parser.parse_args(argv[:split])
    if args.what == "record":
        command = argv[split + 1 :] or args.command
        if command and command[0] == "bakeoff":
            command[0] = str(Path(sys.executable).with_name("bakeoff"))
        print(f"wrote {record(args.name, command, args.run_dir, args.kind).relative_to(ROOT)}")
        return 0
    if missing_files():
        print("tables with no file:", *missing_files(), sep="\n  ")
        return 1
    stale = stale_pages()
    if args.write:
        for page in stale:
            (ROOT / page).write_text(_rendered(ROOT / page))
            print(f"rewrote {page}")
        return 0
    print("stale:", *stale, sep="\n  ") if stale else print("every marked table is current")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
