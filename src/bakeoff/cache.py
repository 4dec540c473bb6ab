"""Where bakeoff keeps what it computes once per machine: converted GGUF weights, CPU measurements."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """bakeoff's own cache (converted GGUF weights, machine measurements). BAKEOFF_CACHE overrides."""
    root = os.environ.get("BAKEOFF_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "bakeoff"
