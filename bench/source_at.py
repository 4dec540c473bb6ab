"""The package code of an earlier commit, for benches that run the same work on old and new code."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def package_source(revision: str, into: Path) -> Path:
    """The `src/` tree of `revision`, extracted under `into` (put it first on PYTHONPATH to run that code)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", revision, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"
