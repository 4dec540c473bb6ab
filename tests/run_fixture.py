"""A tiny real run, made through the real runner (`bakeoff.cli.run.execute`), for tests of readers of stored
results (the notebook API, the MLflow exporter): the built-in task, small sizes, seconds on a CPU."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bakeoff.config import spec_from_dict

EVALUATION = {
    "max_test_items": 30,
    "max_train_items": 10,
    "bootstrap_samples": 100,
    "max_perturbed_items": 10,
    "max_validation_items": 10,
    "max_out_of_scope_items": 10,
    "latency_repeats": 3,
    "perturbations": [{"name": "lowercase"}],
}


def make_run(run_dir: Path, candidates: list[dict], sizes: list[int], tracking: dict | None = None) -> Path:
    from bakeoff.cli.run import execute

    config = {
        "name": "tiny-tickets",
        "task": {"builtin": "support-tickets", "builtin_examples": 200},
        "candidates": candidates,
        "grid": {"train_sizes": sizes},
        "training": {
            "epochs": 2,
            "batch_size": 8,
            "learning_rate": 5e-3,
            "max_validation_items": 10,
            "early_stopping_patience": 0,
        },
        "evaluation": EVALUATION,
        "efficiency": {"gpus": ["a10g"]},
        "output": {"dir": str(run_dir)},
    }
    if tracking:
        config["tracking"] = tracking
    execute(spec_from_dict(config))
    return run_dir


def folder_digest(folder: Path) -> str:
    """Names and bytes of every file under `folder`: equal digests mean nothing was written there.

    Except results.sqlite-shm: SQLite's shared-memory index of the WAL, which exists while a connection is open
    (here, the runner's, still open in this test process) and which every reader updates by design; it holds no
    data, and SQLite deletes it when the last connection closes (as when a `bakeoff run` process ends)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if not p.name.endswith("-shm")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
