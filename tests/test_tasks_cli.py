"""`bakeoff run` on an extraction task from a user CSV (fields mapped to columns), through the real CLI process:
a CRF and a tiny LoRA model, then results.json read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from bakeoff.data.tickets import generate_ticket_records

pytestmark = pytest.mark.integration

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def test_extraction_run_through_the_cli(tmp_path, tiny_folder):
    tickets, records = generate_ticket_records(160, seed=5)
    frame = pd.DataFrame(
        {
            "body": tickets.texts,
            "category": tickets.labels,  # `label_column` present: it stratifies the splits
            "order": [r["order_id"] for r in records],
            "total": [r["amount"] for r in records],
        }
    )
    frame.to_csv(tmp_path / "tickets.csv", index=False)
    config = {
        "name": "cli-extraction",
        "task": {
            "type": "extraction",
            "data": {"path": "tickets.csv", "text_column": "body", "label_column": "category"},
            "fields": {"order_id": "order", "amount": "total"},
            "decoding": {"max_new_tokens": 24},
        },
        "candidates": [{"name": "crf", "model": "crf"}, {"name": "tiny", "model": str(tiny_folder)}],
        "grid": {"train_sizes": [20]},
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "max_validation_items": 8},
        "evaluation": {
            "max_test_items": 10,
            "max_train_items": 4,
            "bootstrap_samples": 100,
            "max_perturbed_items": 10,
            "latency_repeats": 3,
            "perturbations": [{"name": "typos"}],
        },
        "efficiency": {"gpus": ["a10g"]},
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # field order is the record's key order
    done = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "run", str(path)], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    by_name = {t["candidate"]: t for t in results["trials"]}
    assert set(by_name) == {"crf", "tiny"}
    for trial in by_name.values():
        test = trial["result"]["metrics"]["test"] if "result" in trial else trial["metrics"]["test"]
        assert test["fields"] == ["order_id", "amount"] and 0 <= test["record_exact_match"] <= 1
        assert test["items"] == 10
    assert (tmp_path / "run" / "trials" / "tiny__n20__s0" / "predictions.jsonl").exists()
    assert (tmp_path / "run" / "summary.md").read_text().strip()
