"""Ray workers fetch a Hub id like the local runner, into their node's cache, and parallel trials download once."""

from __future__ import annotations

import json

import pytest
from test_hub import REPO_ID, SHA_MAIN, hub, online  # noqa: F401 - fixtures

from bakeoff.config import spec_from_dict

pytestmark = pytest.mark.integration  # starts a local Ray


def test_two_parallel_ray_trials_on_one_node_download_once(hub, tmp_path):  # noqa: F811 - the fixture
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray joined earlier in this process has the offline environment of the test session")
    from bakeoff.cli.run import execute

    config = {
        "name": "hub-ray",
        "task": {"builtin": "support-tickets", "builtin_examples": 200, "split": {"validation_fraction": 0.2}},
        "candidates": [{"name": "tiny", "model": REPO_ID, "method": "lora", "resources": {"cpus": 1}}],
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "max_validation_items": 4},
        "grid": {"train_sizes": [20], "seeds": [0, 1]},
        "evaluation": {
            "max_test_items": 12,
            "max_train_items": 0,
            "bootstrap_samples": 100,
            "latency_repeats": 3,
            "perturbations": [],
            "max_perturbed_items": 10,
            "max_validation_items": 10,
        },
        "output": {"dir": str(tmp_path / "run")},
        "runner": {"kind": "ray"},
    }
    execute(spec_from_dict(config))  # a private Ray on this machine; its workers inherit HF_ENDPOINT and the cache
    trials = json.loads((tmp_path / "run" / "results.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["done", "done"]
    assert {t["result"]["model"]["commit_sha"] for t in trials} == {SHA_MAIN}
    assert len(hub.gets("model.safetensors")) == 1  # two workers, one node cache, one download
