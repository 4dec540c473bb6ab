"""What every benchmark does at the end: say pass/short per target, and write its JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console


def print_targets(console: Console, targets: dict[str, bool]) -> None:
    for target, ok in targets.items():
        console.print(f"  {'pass ' if ok else 'SHORT'} {target}")


def write_json(console: Console, out: Path, payload: dict) -> dict:
    """Write `payload` (with today's date) to `out`; returns what was written."""
    payload = {"date": time.strftime("%Y-%m-%d"), **payload}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1))
    console.print(f"wrote {out}")
    return payload
