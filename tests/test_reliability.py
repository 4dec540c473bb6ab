"""Faults and bad inputs: clear errors, failed trials kept as failed, determinism, nothing stored damaged."""

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakeoff.config import DataSpec, spec_from_dict
from bakeoff.data.load import load_examples
from bakeoff.errors import BakeoffError, ConfigError, DataError, ModelError
from bakeoff.evaluation import perturb
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.sources import resolve_source
from bakeoff.runners.local import run_spec

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def small_spec(tmp_path, tiny_folder, **overrides):
    raw = {
        "name": "small",
        "task": {"builtin": "support-tickets", "builtin_examples": 200},
        "candidates": [
            {"name": "tfidf", "model": "tfidf-logreg"},
            {"name": "tiny", "model": str(tiny_folder), "method": "lora"},
        ],
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "max_validation_items": 10},
        "grid": {"train_sizes": [20]},
        "evaluation": {
            "max_test_items": 30,
            "max_train_items": 10,
            "bootstrap_samples": 100,
            "max_perturbed_items": 10,
            "max_validation_items": 10,
            "max_out_of_scope_items": 10,
            "latency_repeats": 3,
            "perturbations": [{"name": "typos"}, {"name": "paraphrase"}],
        },
        "output": {"dir": str(tmp_path / "run")},
    }
    for key, value in overrides.items():
        section, _, field = key.partition(".")
        raw[section][field] = value
    return spec_from_dict(raw)


def _metrics_only(store):
    return {t["trial_id"]: t["result"]["metrics"] for t in store.trials()}


def test_same_config_and_seed_give_identical_metrics(tmp_path, tiny_folder):
    first = run_spec(small_spec(tmp_path / "a", tiny_folder))
    second = run_spec(small_spec(tmp_path / "b", tiny_folder))
    assert _metrics_only(first.store) == _metrics_only(second.store)
    for name in ("tfidf__n20__s0", "tiny__n20__s0"):
        a = np.load(tmp_path / "a" / "run" / "trials" / name / "predictions.npz")
        b = np.load(tmp_path / "b" / "run" / "trials" / name / "predictions.npz")
        assert np.array_equal(a["probs"], b["probs"])


@pytest.mark.integration
def test_diverging_trial_is_stored_as_failed_and_the_run_goes_on(tmp_path, tiny_folder):
    outcome = run_spec(
        small_spec(tmp_path, tiny_folder, **{"training.learning_rate": 1e12, "training.warmup_fraction": 0.0})
    )
    trials = {t["trial_id"]: t for t in outcome.store.trials()}
    assert trials["tfidf/n20/s0"]["status"] == "done"
    assert trials["tiny/n20/s0"]["status"] == "failed" and "learning_rate" in trials["tiny/n20/s0"]["error"]
    assert outcome.failed == 1
    from decision_fixture import typed

    from bakeoff.report.summary import markdown

    assert "failed: loss became" in markdown(
        "small", typed({"run": outcome.store.metadata(), "trials": outcome.store.trials()})
    )


@pytest.mark.integration
def test_disk_full_while_saving_is_a_clear_error_and_damages_nothing(tmp_path, tiny_folder, monkeypatch):
    spec = small_spec(tmp_path, tiny_folder)
    calls = {"n": 0}
    real = np.savez_compressed

    def full_on_second_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", "predictions.partial.npz")
        return real(*args, **kwargs)

    monkeypatch.setattr("bakeoff.recipes.trial.np.savez_compressed", full_on_second_save)
    with pytest.raises(BakeoffError, match="disk full"):
        run_spec(spec)
    monkeypatch.setattr("bakeoff.recipes.trial.np.savez_compressed", real)
    db = tmp_path / "run" / "results.sqlite"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        done = dict(conn.execute("SELECT trial_id, finished_at FROM trials WHERE status='done'").fetchall())
    assert list(done) == ["tfidf/n20/s0"]
    resumed = run_spec(spec)
    assert resumed.skipped == 1 and resumed.ran == 1
    assert {t["status"] for t in resumed.store.trials()} == {"done"}


def _write_tickets(path, seed: int, n: int = 160) -> None:
    from bakeoff.data.tickets import generate_tickets

    tickets = generate_tickets(n, seed=seed)
    pd.DataFrame({"text": tickets.texts, "label": tickets.labels}).to_csv(path, index=False)


def test_a_changed_data_file_is_refused_on_resume_not_mixed_into_the_run(tmp_path):
    """Same config, same path, other rows: the folder's trials ran on the old data and must not be reused
    (or mixed with new ones into one learning curve)."""
    data = tmp_path / "tickets.csv"
    _write_tickets(data, seed=1)
    spec = spec_from_dict(
        {
            "name": "data-change",
            "task": {"data": {"path": str(data)}},
            "candidates": [{"name": "tfidf", "model": "tfidf-logreg"}],
            "grid": {"train_sizes": [20, 40]},
            "evaluation": {"perturbations": [], "bootstrap_samples": 100},
            "output": {"dir": str(tmp_path / "run")},
        }
    )
    first = run_spec(spec)
    assert first.ran == 2
    first.store.close()
    assert run_spec(spec).skipped == 2, "unchanged data resumes"

    _write_tickets(data, seed=2)  # another sample of the same generator: same labels, other texts
    with pytest.raises(BakeoffError, match="different data"):
        run_spec(spec)
    config = tmp_path / "config.yaml"  # `validate` refuses it too, and writes nothing
    config.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    checked = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "validate", str(config)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 2 and "holds results on different data" in checked.stderr, checked.stderr[-2000:]

    # A folder made before data fingerprints existed resumes as before, and records the data from then on.
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as conn:
        conn.execute("DELETE FROM run WHERE key = 'data_fingerprint'")
    resumed = run_spec(spec)
    assert resumed.skipped == 2
    resumed.store.close()
    _write_tickets(data, seed=1)
    with pytest.raises(BakeoffError, match="different data"):
        run_spec(spec)


def _tiny_trial_running(db) -> bool:
    """True once the store exists and the LLM trial has started (the store may be mid-creation)."""
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db) as conn:
            return bool(
                conn.execute("SELECT count(*) FROM trials WHERE candidate='tiny' AND status='running'").fetchone()[0]
            )
    except sqlite3.OperationalError:
        return False


@pytest.mark.integration
@pytest.mark.parametrize("signum, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_cleanly_and_says_how_to_resume(tmp_path, tiny_folder, signum, exit_code):
    """SIGTERM (a scheduler, a container stop) ends a run as Ctrl-C does: at the next safe point."""
    spec = small_spec(tmp_path, tiny_folder, **{"training.epochs": 30})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    process = subprocess.Popen(
        [sys.executable, "-m", "bakeoff.cli", "run", str(config)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "run" / "results.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if _tiny_trial_running(db):
            break
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr[-3000:]
    said = " ".join(stderr.split())
    assert (
        "stopping at the next safe point" in said
        and "run the same command again to resume" in said
        and "Traceback" not in stderr
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        statuses = dict(conn.execute("SELECT candidate, status FROM trials").fetchall())
    assert statuses["tiny"] == "running"  # stopped mid-trial at a step boundary: the next run redoes it


@pytest.mark.parametrize("damage", ["truncate weights", "garbage weights", "no tokenizer", "pickle only"])
def test_damaged_model_folders_get_a_model_error(tmp_path, tiny_folder, damage):
    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    weights = folder / "model.safetensors"
    if damage == "truncate weights":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "garbage weights":
        weights.write_bytes(b"\x00" * 64)
    elif damage == "no tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink()
    else:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(folder)
        weights.unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    source = resolve_source(str(folder))
    with pytest.raises(ModelError) as caught:
        load_tokenizer(source, LoadOptions())
        load_model(source, LoadOptions())
    if damage == "pickle only":
        assert "allow_pickle" in str(caught.value)


def test_truncated_gguf_is_a_model_error(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 100)
    with pytest.raises(ModelError, match="GGUF"):
        load_tokenizer(resolve_source(str(broken)), LoadOptions())


def test_candidate_names_cannot_escape_the_run_folder():
    base = {"name": "x", "task": {"builtin": "support-tickets"}}
    for bad in ("../../etc", "a/b", ".hidden", "tab\tname"):
        with pytest.raises(ConfigError, match="letters, digits"):
            spec_from_dict(base | {"candidates": [{"name": bad, "model": "tfidf-logreg"}]})


def test_duplicate_ids_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"id": [1, 2, 2, 3], "text": list("abcd"), "label": list("xxyy")}).to_csv(path, index=False)
    with pytest.raises(DataError, match="ids occur more than once"):
        load_examples(path, DataSpec(path=path, id_column="id"))


def test_no_secret_reaches_the_run_folder(tmp_path, tiny_folder, monkeypatch):
    token = "hf_SECRETtoken1234567890"
    monkeypatch.setenv("HF_TOKEN", token)
    run_spec(small_spec(tmp_path, tiny_folder))
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"token leaked into {path}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_fuzzed_csv_files_load_or_raise_a_data_error(tmp_path, content):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"text,label\n" + content)
    try:
        examples, _ = load_examples(path, DataSpec(path=path))
    except DataError:
        return
    assert len(examples.texts) == len(examples.labels) and all(isinstance(t, str) for t in examples.texts)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=200), st.sampled_from(sorted(perturb.REGISTRY)), st.integers(0, 2**16))
def test_fuzzed_perturbations_return_text_deterministically(text, name, seed):
    once = perturb.apply(name, {}, [text], seed)
    assert once == perturb.apply(name, {}, [text], seed) and isinstance(once[0], str)


class _NoMemoryToLoad:
    """Stands in for AutoModelForCausalLM: loading runs out of memory (Mixtral's experts on one 80 GB GPU)."""

    error: type[BaseException] = MemoryError

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        raise cls.error("out of memory (simulated)")


@pytest.mark.parametrize(
    "where, error",
    [("training", "torch.OutOfMemoryError"), ("loading", "torch.OutOfMemoryError"), ("loading", "MemoryError")],
)
def test_out_of_memory_marks_the_trial_failed_with_a_hint_and_the_run_goes_on(
    tmp_path, tiny_folder, monkeypatch, where, error
):
    import torch

    error_type = torch.OutOfMemoryError if error == "torch.OutOfMemoryError" else MemoryError

    def no_memory(*args, **kwargs):
        raise error_type("CUDA out of memory (simulated)")

    if where == "training":
        monkeypatch.setattr("bakeoff.training.packing.packed_label_loss", no_memory)  # the tiny Llama trains packed
    else:  # not turned into "model not loadable", which would stop the whole run
        monkeypatch.setattr(_NoMemoryToLoad, "error", error_type)
        monkeypatch.setattr("bakeoff.models.load.AutoModelForCausalLM", _NoMemoryToLoad)
    outcome = run_spec(small_spec(tmp_path, tiny_folder))
    trials = {t["trial_id"]: t for t in outcome.store.trials()}
    assert trials["tfidf/n20/s0"]["status"] == "done"
    assert trials["tiny/n20/s0"]["status"] == "failed" and "gradient_checkpointing" in trials["tiny/n20/s0"]["error"]


def test_remote_code_is_not_run_without_the_candidates_opt_in(tmp_path, tiny_folder):
    import json

    folder = tmp_path / "remote"
    shutil.copytree(tiny_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForCausalLM": "modeling_evil.EvilModel",
    }
    config["model_type"] = "evil-llama"  # unknown to transformers: only the checkpoint's own code could load it
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "executed"
    (folder / "configuration_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import LlamaConfig as EvilConfig\n"
    )
    (folder / "modeling_evil.py").write_text("from transformers import LlamaForCausalLM as EvilModel\n")
    with pytest.raises(ModelError, match="trust_remote_code"):
        load_model(resolve_source(str(folder)), LoadOptions())
    assert not marker.exists(), "the checkpoint's code ran without opt-in"


PLUGIN = """
from bakeoff.evaluation.perturb import register


@register("explode_on_refunds")
def explode_on_refunds(text, rng):
    if "refund" in text.lower():
        raise ValueError("cannot handle refunds")
    return text.upper()
"""


def test_a_perturbation_plugin_that_raises_fails_its_trials_by_name_and_the_run_goes_on(tmp_path, monkeypatch):
    """A user's plugin raised mid-trial: the run died with a traceback and left the trial `running`."""
    (tmp_path / "exploding_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = spec_from_dict(
        {
            "name": "plugin",
            "task": {"builtin": "support-tickets", "builtin_examples": 200},
            "candidates": [{"name": "tfidf", "model": "tfidf-logreg"}],
            "grid": {"train_sizes": [20, 40]},
            "evaluation": {
                "bootstrap_samples": 100,
                "max_perturbed_items": 40,
                "perturbations": [{"name": "explode_on_refunds"}],
                "plugins": ["exploding_plugin"],
            },
            "output": {"dir": str(tmp_path / "run")},
        }
    )
    outcome = run_spec(spec)
    trials = {t["trial_id"]: t for t in outcome.store.trials()}
    assert outcome.ran == 2 and outcome.failed == 2, "every trial ran, each failed on its own"
    for trial in trials.values():
        assert trial["status"] == "failed"
        assert trial["error"].startswith(
            "perturbation `explode_on_refunds` (exploding_plugin.explode_on_refunds) raised ValueError: "
            "cannot handle refunds (on item "
        )


def test_a_stopped_run_whose_store_was_moved_away_is_still_a_run_folder(tmp_path):
    """The damaged-store message says to move results.sqlite away and run again: what the stopped run left
    (trials, its log and lock, WAL files, the store renamed in place, a .partial output) is bakeoff's own."""
    from bakeoff.runners.preflight import check_run_dir

    folder = tmp_path / "run"
    (folder / "trials" / "tfidf__n6__s0").mkdir(parents=True)
    for name in ("progress.log", ".bakeoff.lock", "results.sqlite-wal", "results.sqlite.bad", "summary.md.partial"):
        (folder / name).write_text("x")
    check_run_dir(folder, create=False)
    check_run_dir(folder, create=True)
    (folder / "notes.txt").write_text("the user's")
    with pytest.raises(BakeoffError, match=r"holds files bakeoff did not write \(notes.txt\)"):
        check_run_dir(folder, create=False)


def test_a_spec_stored_by_an_earlier_version_with_a_ray_address_on_the_local_runner_still_loads():
    """`--runner local` on a config with runner.address stored both: serve, export and loadtest validate the stored
    spec, so the rule lives in preflight (for new runs), not in RunnerSpec."""
    from bakeoff.config import RunSpec
    from bakeoff.runners.preflight import check_hardware_names

    stored = spec_from_dict(
        {"name": "x", "task": {"builtin": "support-tickets"}, "candidates": [{"name": "a", "model": "tfidf-logreg"}]}
    ).model_dump(mode="json")
    stored["runner"] |= {"kind": "local", "address": "auto"}
    spec = RunSpec.model_validate(stored)
    with pytest.raises(ConfigError, match="runner.address is a setting of the Ray runner"):
        check_hardware_names(spec)


def test_a_second_sigterm_stops_at_once_and_still_exits_as_sigterm():
    from rich.console import Console

    from bakeoff.runners.interrupt import RunInterrupted, StopNow, stop_on_interrupt

    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL, or Ray's own handler once a test started Ray here
    with stop_on_interrupt(Console(file=open(os.devnull, "w"))) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(RunInterrupted) as first:
            stop.check()
        assert first.value.exit_code == 143
        with pytest.raises(StopNow) as second:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes of this thread
        assert second.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before, "the handler is given back"
