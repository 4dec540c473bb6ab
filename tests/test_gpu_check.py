"""bench/gpu_check.sh --dry-run: the GPU machine's one command, run end to end on CPU with a cut model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # runs bench/gpu_check.sh --dry-run in a subprocess

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("bitsandbytes")


def test_gpu_check_dry_run_trains_lora_and_qlora_and_writes_json(tmp_path):
    env = os.environ | {"PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "COLUMNS": "200"}
    done = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_check.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=900,
        cwd=tmp_path,
    )  # ~40 s of CPU; minutes of wall time on a shared machine
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    payload = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert payload["dry_run"] and payload["measured_peak_tflops"] > 0
    rows = {row["method"]: row for row in payload["trials"]}
    assert set(rows) == {"lora", "qlora"} and not any("error" in row for row in rows.values())
    for row in rows.values():
        assert row["steps"] == 3 and row["train_tokens_per_s"] > 0 and 0 < row["mfu"] < 1
        assert row["peak_memory_gb"] > 0 and row["estimated_memory_gb"]["total"] > 0 and row["estimated_step_s"] > 0
        assert set(row["scoring"]) == {"1", "32"} and row["scoring"]["32"]["items_per_s"] > 0
        layouts = row["packed_vs_padded_loss"]  # float32 here: the two layouts agree to rounding
        assert layouts["packed"] and layouts["relative_difference"] < 1e-4, layouts
    assert rows["qlora"]["matmul_params"] == rows["lora"]["matmul_params"], "NF4 bytes counted as two weights each"
    assert "gpu_check finished" in done.stdout
