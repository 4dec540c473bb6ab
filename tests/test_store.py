"""The results store: resumable, refuses a different config, survives reopening."""

import pytest

from bakeoff.errors import BakeoffError
from bakeoff.run_folder import RunFolder


def test_trial_lifecycle_and_resume(tmp_path):
    store = RunFolder(tmp_path).claim_store("fp1", {"spec": {"name": "x"}})
    store.start("a/n10/s0", "a", "lora", 10, 0)
    store.finish("a/n10/s0", {"metrics": {"test": {"accuracy": 0.5}}})
    store.start("b/n10/s0", "b", "lora", 10, 0)  # left running, as after a crash
    store.close()

    reopened = RunFolder(tmp_path).claim_store("fp1", {"spec": {"name": "x"}})
    assert reopened.status("a/n10/s0") == "done" and reopened.status("b/n10/s0") == "running"
    reopened.start("b/n10/s0", "b", "lora", 10, 0)
    reopened.fail("b/n10/s0", "loss became nan")
    trials = {t["trial_id"]: t for t in reopened.trials()}
    assert trials["b/n10/s0"]["attempts"] == 2 and trials["b/n10/s0"]["error"] == "loss became nan"
    assert trials["a/n10/s0"]["result"]["metrics"]["test"]["accuracy"] == 0.5
    assert reopened.metadata()["spec"] == {"name": "x"} and reopened.integrity_ok()


def test_a_different_config_cannot_write_into_the_run_folder(tmp_path):
    RunFolder(tmp_path).claim_store("fp1", {}).close()
    with pytest.raises(BakeoffError, match="different config"):
        RunFolder(tmp_path).claim_store("fp2", {})


def test_a_stored_trial_keeps_every_section_and_names_an_unknown_one():
    """The Ray runner's `ray` section (node, seconds in the worker) reads back; a section this version does not
    know fails when read, naming it, instead of being dropped."""
    from bakeoff.results import TrialRecord

    row = {"trial_id": "a/n10/s0", "candidate": "a", "method": "fit", "train_size": 10, "seed": 0, "status": "done"}
    ray = {"node": "10.0.0.7", "trial_s": 12.5}
    assert TrialRecord.from_stored(row | {"result": {"ray": ray, "model_name": "tfidf-logreg"}}).ray == ray
    with pytest.raises(ValueError, match=r"trial a/n10/s0: stored sections this version does not read: \['rays'\]"):
        TrialRecord.from_stored(row | {"result": {"rays": ray}})
