"""`bakeoff export mlflow` and `tracking.mlflow`: a tiny real run, read back with MLflow's own client."""

import json
import shutil
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("mlflow")

from run_fixture import folder_digest, make_run

from bakeoff.cli.main import app
from bakeoff.errors import BakeoffError
from bakeoff.store import ResultStore
from bakeoff.tracking.mlflow_export import connect, export_run, resolve_uri


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_folder):
    """tfidf and a tiny LoRA LLM at one size, logged live to a file store while it runs."""
    root = tmp_path_factory.mktemp("mlflow")
    candidates = [
        {"name": "tfidf", "model": "tfidf-logreg"},
        {"name": "tiny lora", "model": str(tiny_folder), "method": "lora"},
    ]
    live_store = root / "live-mlruns"
    make_run(root / "run", candidates, [16], tracking={"mlflow": {"uri": str(live_store), "experiment": "live"}})
    return {"dir": root / "run", "live": live_store, "results": json.loads((root / "run" / "results.json").read_text())}


def client_for(store):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=resolve_uri(str(store)))


def runs_of(store, experiment):
    client = client_for(store)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["bakeoff.trial_id"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    return client, parents, children, runs


def test_export_lands_one_parent_and_one_child_per_trial_with_the_stored_numbers(run, tmp_path):
    summary = export_run(run["dir"], str(tmp_path / "mlruns"), weights=True)
    client, parents, children, runs = runs_of(tmp_path / "mlruns", "tiny-tickets")
    results = run["results"]
    assert len(parents) == 1 and len(runs) == 1 + len(results["trials"]) == 3 and summary.created == 3
    parent = parents[0]
    assert set(children) == {t["trial_id"] for t in results["trials"]}
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children.values())

    for trial in results["trials"]:
        child, stored = children[trial["trial_id"]], trial["result"]
        metrics, params = child.data.metrics, child.data.params
        test = stored["metrics"]["test"]
        assert metrics["test.accuracy"] == test["accuracy"]
        assert [metrics["test.accuracy.ci_low"], metrics["test.accuracy.ci_high"]] == test["accuracy_ci"]
        assert [metrics["test.macro_f1"], metrics["test.macro_f1.ci_low"], metrics["test.macro_f1.ci_high"]] == [
            test["macro_f1"],
            *test["macro_f1_ci"],
        ]
        assert metrics["train.accuracy"] == stored["metrics"]["train"]["accuracy"]
        label = next(iter(test["per_class"]))
        assert metrics[f"test.per_class.{label}.f1"] == test["per_class"][label]["f1"]
        lowercase = stored["metrics"]["robustness"]["perturbations"]["lowercase"]
        assert metrics["robustness.perturbations.lowercase.accuracy"] == lowercase["accuracy"]
        assert metrics["robustness.perturbations.lowercase.macro_f1_drop.ci_high"] == lowercase["macro_f1_drop_ci"][1]
        assert (
            metrics["out_of_scope.by_score.max_prob.auroc"]
            == stored["metrics"]["out_of_scope"]["by_score"]["max_prob"]["auroc"]
        )
        assert metrics["timings.latency_ms_p95"] == stored["timings"]["latency_ms_p95"]
        assert metrics["timings.peak_memory_mb"] == stored["timings"]["peak_memory_mb"]
        assert params["candidate"] == trial["candidate"] and params["method"] == trial["method"]
        assert params["train_size"] == str(trial["train_size"]) and params["seed"] == str(trial["seed"])
        assert child.info.status == "FINISHED" and child.data.tags["bakeoff.status"] == "done"

    lora = children["tiny lora/n16/s0"]
    training = next(t for t in results["trials"] if t["candidate"] == "tiny lora")["result"]["training"]
    assert lora.data.params["training.learning_rate"] == "0.005" and lora.data.params["training.lora.r"] == "16"
    assert lora.data.metrics["training.train_tokens"] == training["train_tokens"]
    history = client.get_metric_history(lora.info.run_id, "training.train_loss")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == training["train_loss_per_epoch"] and len(
        history
    ) == 2
    estimates = next(t for t in results["trials"] if t["candidate"] == "tiny lora")["result"]["efficiency"]
    assert lora.data.metrics["efficiency.estimated_step_s"] == estimates["estimated_step_s"]
    assert [
        a.path for a in client.list_artifacts(lora.info.run_id, "adapter")
    ] and "adapter/adapter_model.safetensors" in {a.path for a in client.list_artifacts(lora.info.run_id, "adapter")}
    assert not client.list_artifacts(children["tfidf/n16/s0"].info.run_id)

    recommendation = results["recommendation"]
    assert parent.data.tags["bakeoff.choice"] == recommendation["choice"]
    assert parent.data.tags["mlflow.note.content"] == recommendation["rationale"]
    assert parent.data.params["fingerprint"] == results["run"]["fingerprint"]
    assert parent.data.params["version.torch"] == results["run"]["versions"]["torch"]
    assert parent.data.metrics["trials.done"] == 2 and parent.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "summary.md", "results.json", "spec.json", "versions.json"} <= artifacts
    local = client.download_artifacts(parent.info.run_id, "results.json", str(tmp_path / "down"))
    assert json.loads(Path(local).read_text()) == results


READ_BACK = """
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
experiment = client.get_experiment_by_name("tiny-tickets")
runs = client.search_runs([experiment.experiment_id])
child = next(r for r in runs if r.data.tags.get("bakeoff.trial_id") == "tfidf/n16/s0")
parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
summary = client.download_artifacts(parent.info.run_id, "summary.md", sys.argv[1])
print(json.dumps({"runs": len(runs), "accuracy": child.data.metrics["test.accuracy"],
                  "summary": open(summary).read()[:200]}))
"""


def test_the_default_store_is_sqlite_here_and_mlflow_reads_it_back_with_no_setting(run, tmp_path):
    """What a user does: `bakeoff export mlflow RUN` in a folder, then MLflow's own client (as `mlflow ui` does)
    on sqlite:///mlflow.db there, in a fresh process with no MLFLOW_* variable set."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    export = subprocess.run(
        [sys.executable, "-m", "bakeoff", "export", "mlflow", str(run["dir"])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert export.returncode == 0, export.stderr[-2000:]
    assert (tmp_path / "mlflow.db").is_file() and not (tmp_path / "mlruns").exists()
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path.resolve() / 'mlflow.db'}" in export.stderr
    read = subprocess.run(
        [sys.executable, "-c", READ_BACK, str(tmp_path / "downloaded")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    back = json.loads(read.stdout.strip().splitlines()[-1])
    tfidf = next(t for t in run["results"]["trials"] if t["trial_id"] == "tfidf/n16/s0")
    assert back["runs"] == 3 and back["accuracy"] == pytest.approx(tfidf["result"]["metrics"]["test"]["accuracy"])
    assert back["summary"] == (run["dir"] / "summary.md").read_text()[:200]
    assert (tmp_path / "mlartifacts").is_dir(), "artifacts beside the database, where `mlflow server` keeps them"


def test_reexport_updates_the_same_runs_and_never_duplicates(run, tmp_path):
    store = tmp_path / "mlruns"
    first = export_run(run["dir"], str(store))
    again = export_run(run["dir"], str(store))
    assert (
        again.created == 0 and again.parent_run_id == first.parent_run_id and again.child_run_ids == first.child_run_ids
    )
    client, parents, children, runs = runs_of(store, "tiny-tickets")
    assert len(runs) == 3
    # Unchanged values are not logged again: metric histories do not grow with each export.
    assert len(client.get_metric_history(children["tfidf/n16/s0"].info.run_id, "test.accuracy")) == 1

    # A changed store (a copy: a trial's result and the decision answers edited) updates the same runs.
    copy = tmp_path / "copy"
    shutil.copytree(run["dir"], copy)
    store_db = ResultStore(copy / "results.sqlite")
    trial = next(t for t in store_db.trials() if t["trial_id"] == "tfidf/n16/s0")
    trial["result"]["metrics"]["test"]["accuracy"] = 0.123
    store_db.finish("tfidf/n16/s0", trial["result"])
    spec = store_db.get_meta("spec")
    store_db.set_meta("spec", spec | {"decision": (spec.get("decision") or {}) | {"min_macro_f1": 0.999}})
    store_db.close()
    updated = export_run(copy, str(store))
    assert updated.created == 0 and updated.parent_run_id == first.parent_run_id
    client, parents, children, runs = runs_of(store, "tiny-tickets")
    assert len(runs) == 3
    assert children["tfidf/n16/s0"].data.metrics["test.accuracy"] == 0.123
    assert (
        parents[0].data.tags["bakeoff.choice"] == ""
        and "below the floor" in parents[0].data.tags["bakeoff.excluded.tfidf"]
    )


def test_config_tracking_logs_while_the_run_goes(run):
    client, parents, children, _runs = runs_of(run["live"], "live")
    assert len(parents) == 1 and set(children) == {"tfidf/n16/s0", "tiny lora/n16/s0"}
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["bakeoff.state"] == "finished"
    assert parent.data.tags["bakeoff.choice"] == run["results"]["recommendation"]["choice"]
    assert "report.html" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    stored = {t["trial_id"]: t["result"]["metrics"]["test"]["macro_f1"] for t in run["results"]["trials"]}
    assert {k: c.data.metrics["test.macro_f1"] for k, c in children.items()} == stored
    # Logged as each trial was stored, not all at the end: the LoRA trial's child was created after that trial
    # finished, at least its fine-tuning time after the tfidf child (which was created before it started).
    lora = next(t for t in run["results"]["trials"] if t["candidate"] == "tiny lora")
    gap_ms = children["tiny lora/n16/s0"].info.start_time - children["tfidf/n16/s0"].info.start_time
    assert gap_ms >= 1000 * lora["result"]["timings"]["fine_tune_s"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_uri_is_one_line_exit_2_and_the_run_folder_is_untouched(run):
    before = folder_digest(run["dir"])
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["export", "mlflow", str(run["dir"]), "--tracking-uri", f"http://127.0.0.1:{_free_port()}"]
    )
    assert result.exit_code == 2, result.output
    assert time.monotonic() - started < 30  # no minutes of retries
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert (
        len(lines) == 1
        and "cannot use the MLflow tracking URI http://127.0.0.1:" in lines[0]
        and "Connection refused" in lines[0]
    )
    assert folder_digest(run["dir"]) == before


class _NotMlflow(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_server_that_is_not_mlflow_is_named_as_such(run):
    server = HTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        before = folder_digest(run["dir"])
        result = CliRunner().invoke(
            app, ["export", "mlflow", str(run["dir"]), "--tracking-uri", f"http://127.0.0.1:{server.server_port}"]
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert result.exit_code == 2 and "HTTP 404: is this an MLflow tracking server?" in result.output
    assert folder_digest(run["dir"]) == before


def test_missing_extra_is_one_line_exit_2(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if mlflow were not installed
    before = folder_digest(run["dir"])
    result = CliRunner().invoke(app, ["export", "mlflow", str(run["dir"])])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == "error: MLflow export needs the `mlflow` extra: pip install 'bakeoff[mlflow]' (or mlflow)"
    )
    assert folder_digest(run["dir"]) == before
    from bakeoff.config import spec_from_dict
    from bakeoff.tracking.live import check_tracking

    spec = spec_from_dict(
        {
            "name": "x",
            "task": {"builtin": "support-tickets"},
            "candidates": [{"name": "a", "model": "tfidf-logreg"}],
            "tracking": {"mlflow": {"uri": "http://127.0.0.1:1"}},
        }
    )
    with pytest.raises(BakeoffError, match="needs the `mlflow` extra"):
        check_tracking(spec)


def test_database_uris_without_sqlalchemy_say_what_to_install(monkeypatch):
    """mlflow-skinny alone (no SQLAlchemy) cannot open the default SQLite store: one line naming the extra."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sqlalchemy" else real(name, *a))
    with pytest.raises(BakeoffError, match=r"database stores \(the default, sqlite:///mlflow.db\) need the full"):
        connect("sqlite:///tracking.db")


def test_not_a_run_folder(tmp_path):
    result = CliRunner().invoke(app, ["export", "mlflow", str(tmp_path)])
    assert result.exit_code == 2 and "is not a bakeoff run folder" in result.output


def test_tracking_does_not_change_the_fingerprint():
    from bakeoff.config import spec_from_dict

    base = {"name": "x", "task": {"builtin": "support-tickets"}, "candidates": [{"name": "a", "model": "tfidf-logreg"}]}
    tracked = spec_from_dict(base | {"tracking": {"mlflow": {"uri": "http://host:5000", "experiment": "e"}}})
    assert tracked.fingerprint() == spec_from_dict(base).fingerprint()
    assert tracked.tracking.mlflow.experiment == "e"


def test_local_paths_become_file_uris_and_the_default_is_sqlite_here(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert resolve_uri("sqlite:///sub/t.db") == f"sqlite:///{tmp_path.resolve() / 'sub' / 't.db'}"
    assert resolve_uri("sqlite:////abs/t.db") == "sqlite:////abs/t.db"
    assert resolve_uri("mlruns") == (tmp_path / "mlruns").resolve().as_uri()
    assert resolve_uri("http://host:5000") == "http://host:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://tracking.example")
    assert resolve_uri(None) == "https://tracking.example"


def test_a_tracking_server_lost_mid_run_costs_a_warning_not_the_run(run):
    from rich.console import Console

    from bakeoff.config import spec_from_dict
    from bakeoff.tracking.live import track_trial

    spec = spec_from_dict(
        {
            "name": "x",
            "task": {"builtin": "support-tickets"},
            "candidates": [{"name": "a", "model": "tfidf-logreg"}],
            "tracking": {"mlflow": {"uri": f"http://127.0.0.1:{_free_port()}"}},
        }
    )
    console = Console(record=True, width=300)
    before = folder_digest(run["dir"])
    track_trial(spec, run["dir"], console)  # no exception: the runner goes on with the next trial
    text = console.export_text()
    assert "MLflow logging skipped (cannot use the MLflow tracking URI" in text and "bakeoff export mlflow" in text
    assert folder_digest(run["dir"]) == before


def test_failed_trials_are_failed_runs_and_running_ones_wait(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run["dir"], copy)
    store = ResultStore(copy / "results.sqlite")
    store.start("tiny lora/n16/s0", "tiny lora", "lora", 16, 0)  # a re-run that diverged: start() clears the result
    store.fail("tiny lora/n16/s0", "loss became nan at step 3; lower training.learning_rate")
    store.start("tfidf/n99/s0", "tfidf", "fit", 99, 0)  # started, not finished (a killed or ongoing trial)
    store.close()
    summary = export_run(copy, str(tmp_path / "mlruns"))
    assert summary.skipped == ["tfidf/n99/s0"]
    _, parents, children, _ = runs_of(tmp_path / "mlruns", "tiny-tickets")
    failed = children["tiny lora/n16/s0"]
    assert failed.info.status == "FAILED" and failed.data.tags["bakeoff.error"].startswith("loss became nan")
    assert "test.accuracy" not in failed.data.metrics and set(children) == {"tfidf/n16/s0", "tiny lora/n16/s0"}
    assert parents[0].data.metrics["trials.failed"] == 1


def test_keys_that_differ_only_in_unsafe_characters_stay_apart():
    from bakeoff.tracking.flatten import safe_key, scalar_metrics

    metrics = scalar_metrics({"test": {"per_field": {"名前": {"f1": 1.0}, "金額": {"f1": 0.0}, "a/b": {"f1": 0.5}}}})
    assert len(metrics) == 3 and sorted(metrics.values()) == [0.0, 0.5, 1.0]
    assert safe_key("test.per_class.a_b.f1") == "test.per_class.a_b.f1", "safe keys are kept as they are"
    assert safe_key("test.per_class.a/b.f1") != safe_key("test.per_class.a_b.f1")
    assert all(not set(k) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.- ") for k in metrics)
