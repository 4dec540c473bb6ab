"""What every benchmark does at the end: say pass/short per target, and write its JSON with its provenance.

Importing this module reads the machine's fp32 matmul peak once (the "before" reading); `write_json` reads it
again ("after") and writes the bench's numbers in the envelope `scripts/measurements.py` renders into the docs:
the command, the UTC start, the wall time, the machine, both peak readings, the bench's table and its result.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import measurements  # noqa: E402  (scripts/measurements.py: machine() and matmul_peak(), shared with `record`)

STARTED = datetime.datetime.now(datetime.timezone.utc)
_STARTED_CLOCK = time.perf_counter()
PEAK_BEFORE = measurements.matmul_peak()


def print_targets(console: Console, targets: dict[str, bool]) -> None:
    for target, ok in targets.items():
        console.print(f"  {'pass ' if ok else 'SHORT'} {target}")


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    text = str(cell)
    return Text.from_markup(text).plain if "[" in text else text


def table_rows(table: Table) -> dict:
    """A rich table as plain data: its title, column headers and rows of cell text (markup removed)."""
    columns = [_plain(column.header) for column in table.columns]
    cells = [[_plain(cell) for cell in column.cells] for column in table.columns]
    rows = [list(row) for row in zip(*cells)] if cells else []
    return {"title": _plain(table.title or ""), "columns": columns, "rows": rows}


def write_json(console: Console, out: Path, payload: dict, table: Table | None = None) -> dict:
    """Write `payload` to `out` inside its provenance envelope; returns the envelope.

    The envelope holds the command line, the UTC date, the wall time since the bench started, the machine
    (CPU, cores, commit), the fp32 matmul peak read when the bench started and now, the printed table
    (when given) and the bench's own numbers under `result`.
    """
    name = Path(out).stem
    data = {
        "name": name,
        "kind": "bench",
        "command": " ".join(["python", *[str(arg) for arg in sys.argv]]),
        "date": STARTED.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - _STARTED_CLOCK, 1),
        "machine": measurements.machine(),
        "fp32_matmul_peak": {"before": PEAK_BEFORE, "after": measurements.matmul_peak()},
        "table": table_rows(table) if table is not None else None,
        "result": payload,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, default=str) + "\n")
    console.print(f"wrote {out}")
    return data
