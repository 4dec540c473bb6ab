"""The layers docs/architecture.md states are the ones import-linter enforces, and the tree keeps them."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def test_the_documented_layers_are_the_enforced_ones():
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- layers:", 1)[1].split("<!-- /layers -->", 1)[0]
    documented = [
        " | ".join(f"bakeoff.{name}" for name in re.findall(r"`(\w+)`", line.split("(", 1)[0]))
        for line in block.splitlines()
        if re.match(r"\d+\. ", line)
    ]
    assert documented == contracts()["layers"]["layers"]


def test_the_source_tree_keeps_the_contracts():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (the dev extra installs it)")
    out = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "0 broken" in out.stdout
