"""The Ray runner on a local Ray instance (num_cpus=2, started once for the module): same metrics as the local
runner, a killed worker retried, a killed driver resumed, impossible requests refused before any trial, and
a clear message without Ray. Resource planning is tested without Ray."""

import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console
from typer.testing import CliRunner

from bakeoff.config import load_spec, spec_from_dict
from bakeoff.efficiency.hardware import gpu
from bakeoff.errors import BakeoffError
from bakeoff.runners.grid import expand_grid
from bakeoff.runners.resources import NodeCapacity, cluster_gpu, nodes_from_ray, refuse_unplaceable, trial_resources

pytestmark = pytest.mark.integration  # a local Ray cluster and CLI processes

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def tiny_config(tmp_path: Path, tiny_folder: Path | None, name: str = "ray-tiny", cpus: float = 1, **extra) -> Path:
    resources = {"cpus": cpus}
    candidates = [{"name": "tfidf", "model": "tfidf-logreg", "resources": resources}]
    if tiny_folder is not None:
        candidates.append({"name": "tiny lora", "model": str(tiny_folder), "method": "lora", "resources": resources})
    config = {
        "name": name,
        "task": {"builtin": "support-tickets", "builtin_examples": 200, "split": {"validation_fraction": 0.2}},
        "candidates": candidates,
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "max_validation_items": 4},
        "grid": {"train_sizes": [20], "seeds": [0]},
        "evaluation": {
            "max_test_items": 12,
            "max_train_items": 0,
            "bootstrap_samples": 100,
            "latency_repeats": 3,
            "perturbations": [{"name": "lowercase"}],
            "max_perturbed_items": 10,
            "max_validation_items": 10,
        },
        "output": {"dir": str(tmp_path / "run")},
    }
    for dotted, value in extra.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the module. Workers inherit this environment: absolute paths to this checkout's
    code and to the tests folder (for the kill plugin)."""
    ray = pytest.importorskip("ray")
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "RAY_AUTH_MODE")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS)])
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp_dir = tempfile.mkdtemp(prefix="bkray-", dir="/tmp")
    ray.init(
        num_cpus=2,
        _temp_dir=temp_dir,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=200 * 2**20,
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _run_on_ray(config: Path):
    from bakeoff.runners.ray_runner import run_spec_on_ray

    log = io.StringIO()
    outcome = run_spec_on_ray(load_spec(config), Console(file=log, width=200))
    return outcome, log.getvalue()


def _metrics(store) -> dict:
    return {t["trial_id"]: t["result"]["metrics"] for t in store.trials() if t["status"] == "done"}


def test_ray_and_local_give_the_same_metrics_and_files(tmp_path, tiny_folder, ray_cluster):
    from bakeoff.runners.local import run_spec

    # Each trial gets as many threads as the local runner uses (2 here; fixed, not `auto`, which may pick 1 on a
    # busy machine): float sums then add up in the same order, and the metrics are equal to the last bit (with
    # other thread counts: to ~1e-8, see footguns).
    threads = torch.get_num_threads()
    local_spec = load_spec(tiny_config(tmp_path / "local", tiny_folder), [f"runner.threads={threads}"])
    local = run_spec(local_spec, Console(file=io.StringIO()))
    on_ray, log = _run_on_ray(tiny_config(tmp_path / "ray", tiny_folder, cpus=threads))
    assert (on_ray.ran, on_ray.failed, local.failed) == (2, 0, 0)
    assert _metrics(on_ray.store) == _metrics(local.store) and len(_metrics(local.store)) == 2
    # Predictions and the adapter came back through Ray into the driver's run folder.
    trial_dir = on_ray.run_dir / "trials" / "tiny lora__n20__s0"
    assert (trial_dir / "predictions.npz").is_file() and (trial_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (trial_dir / "predictions.npz").read_bytes() != b""
    lora = next(t for t in on_ray.store.trials() if t["candidate"] == "tiny lora")["result"]
    assert lora["training"]["steps"] == 3 and lora["ray"]["node"] and lora["ray"]["trial_s"] > 0
    from bakeoff.api import load_run

    read = next(t for t in load_run(on_ray.run_dir).trials if t.candidate == "tiny lora")
    assert read.ray == lora["ray"], "the Ray section reads back through the library"
    assert "done tfidf/n20/s0" in log and "2 of 2 done, 0 failed" in log, log
    assert "done tfidf/n20/s0" in (on_ray.run_dir / "progress.log").read_text(), "a Ray run logs progress too"

    # The same folder resumes under either runner: nothing is redone.
    again, _ = _run_on_ray(tiny_config(tmp_path / "local", tiny_folder))
    assert (again.ran, again.skipped) == (0, 2)


def test_an_extraction_grid_runs_on_ray_and_its_outputs_come_back_for_the_analysis(tmp_path, tiny_folder, ray_cluster):
    from bakeoff.evaluation.analysis import analyse

    config = tiny_config(
        tmp_path,
        None,
        task={
            "type": "extraction",
            "builtin": "support-tickets-extraction",
            "builtin_examples": 200,
            "fields": ["order_id", "amount"],
            "decoding": {"max_new_tokens": 24},
        },
        candidates=[
            {"name": "crf", "model": "crf", "resources": {"cpus": 1}},
            {"name": "tiny", "model": str(tiny_folder), "method": "lora", "resources": {"cpus": 1}},
        ],
    )
    outcome, log = _run_on_ray(config)
    assert (outcome.ran, outcome.failed) == (2, 0), log
    trials = {t["trial_id"]: t for t in outcome.store.trials()}
    llm = trials["tiny/n20/s0"]["result"]
    assert llm["metrics"]["main_metric"] == "record_exact_match" and llm["ray"]["node"]
    # The written records and per-item scores travelled back into the driver's run folder.
    folder = outcome.run_dir / "trials" / "tiny__n20__s0"
    assert len((folder / "predictions.jsonl").read_text().splitlines()) == llm["metrics"]["test"]["items"]
    analysis = analyse(list(trials.values()), outcome.run_dir, yaml.safe_load(config.read_text()))
    [pair] = analysis["paired_comparisons"]
    assert {pair["a"], pair["b"]} == {"crf", "tiny"} and pair["main_metric"] == "record_exact_match"


def test_a_killed_worker_is_retried_once_then_its_trial_is_stored_as_failed_and_the_run_goes_on(tmp_path, ray_cluster):
    marker = tmp_path / "killed"
    kill = {"name": "kill_worker", "params": {"marker": str(marker), "kills": "tfidf/n20/s0=1;tfidf/n20/s1=2"}}
    config = tiny_config(
        tmp_path, None, evaluation__perturbations=[kill], evaluation__plugins=["ray_test_plugin"], grid__seeds=[0, 1]
    )
    outcome, log = _run_on_ray(config)
    killed = sorted(path.name.removeprefix("killed.") for path in tmp_path.glob("killed.*"))
    assert killed == ["tfidf__n20__s0.1", "tfidf__n20__s1.1", "tfidf__n20__s1.2"], (
        "the workers were not killed: the test proves nothing"
    )
    trials = {t["trial_id"]: t for t in outcome.store.trials()}
    assert trials["tfidf/n20/s0"]["status"] == "done", "killed once: the retry finished it"
    assert trials["tfidf/n20/s0"]["result"]["metrics"]["robustness"]["perturbations"]["kill_worker"]
    failed = trials["tfidf/n20/s1"]
    assert (
        failed["status"] == "failed" and "worker process died" in failed["error"] and "2 attempts" in failed["error"]
    ), failed
    assert (outcome.ran, outcome.failed) == (2, 1) and "tfidf/n20/s1 failed" in log


def _rows(database: Path) -> dict:
    if not database.exists():
        return {}
    with closing(sqlite3.connect(database)) as db:
        try:
            return {row[0]: row[1:] for row in db.execute("SELECT trial_id, status, attempts, finished_at FROM trials")}
        except sqlite3.OperationalError:  # the driver is creating the tables
            return {}


def _cli_env():
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}


def _stop_driver_after(command: list[str], database: Path, done: int, signum: int) -> subprocess.Popen:
    """Start a driver; once `done` trials are done and another is running, send it `signum`; return it ended."""
    driver = subprocess.Popen(command, env=_cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 150
    while time.time() < deadline and driver.poll() is None:
        statuses = [row[0] for row in _rows(database).values()]
        if statuses.count("done") >= done and "running" in statuses:
            break
        time.sleep(0.05)
    driver.send_signal(signum)
    driver.wait(timeout=60)
    return driver


def test_driver_kill_9_or_ctrl_c_then_the_same_command_skips_done_trials(tmp_path, ray_cluster):
    # Three trials one at a time (2 CPUs each on a 2-CPU Ray), each pausing 0.3 s per perturbed item in its
    # worker (3 s): windows to stop the driver in.
    pause = {"name": "pause_in_worker", "params": {"seconds": 0.3}}
    config = tiny_config(
        tmp_path,
        None,
        cpus=2,
        grid__seeds=[0, 1, 2],
        evaluation__perturbations=[pause],
        evaluation__plugins=["ray_test_plugin"],
    )
    database = tmp_path / "run" / "results.sqlite"
    command = [sys.executable, "-m", "bakeoff.cli", "run", str(config), "--runner", "ray", "--ray-address", ray_cluster]

    killed = _stop_driver_after(command, database, 1, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL, (
        f"the driver ended ({killed.returncode}) before one trial was done and another running; trials: "
        f"{_rows(database)}; stderr: {killed.stderr.read()[-3000:]}"
    )
    done_first = {t: r for t, r in _rows(database).items() if r[0] == "done"}

    interrupted = _stop_driver_after(command, database, len(done_first) + 1, signal.SIGINT)
    stderr = interrupted.stderr.read()
    assert interrupted.returncode == 130, stderr[-3000:]
    assert "run the same command again to resume" in stderr
    rows = _rows(database)
    assert "running" in {r[0] for r in rows.values()}, "the cancelled trial stays `running`, to be redone"
    done_before = {t: r for t, r in rows.items() if r[0] == "done"}
    assert len(done_before) >= len(done_first) + 1 and all(done_before[t] == r for t, r in done_first.items())

    resumed = subprocess.run(command, env=_cli_env(), capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _rows(database)
    assert len(after) == 3 and {r[0] for r in after.values()} == {"done"}
    for trial_id, row in done_before.items():
        assert after[trial_id] == row, f"{trial_id} was redone"
    assert f"{3 - len(done_before)} trials run, {len(done_before)} already done" in resumed.stderr


def test_a_trial_asking_for_more_gpus_than_any_node_has_is_refused_before_anything_runs(tmp_path, ray_cluster):
    from bakeoff.cli.main import app

    config = tiny_config(tmp_path, None)
    raw = yaml.safe_load(config.read_text())
    # `train_sizes` (a list in the candidate's spec) once made the per-trial plan crash: unhashable.
    big = {"name": "big", "model": "tfidf-logreg", "resources": {"gpus": 4, "cpus": 1}, "train_sizes": [20]}
    raw["candidates"].append(big)
    config.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", str(config), "--runner", "ray"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert (
        "trial `big/n20/s0` asks for 4 GPUs, 1 CPU (declared in resources.gpus)" in text
        and "has 0 GPUs, 2 CPUs" in text
        and "No trial was started" in text
    )
    assert not (tmp_path / "run" / "results.sqlite").exists()


def test_without_ray_the_ray_runner_says_how_to_install_it(tmp_path, monkeypatch):
    from bakeoff.cli.main import app

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = CliRunner().invoke(app, ["run", str(tiny_config(tmp_path, None)), "--runner", "ray"])
    assert result.exit_code == 2 and "pip install ray==2.60.0" in result.output, result.output


def test_help_and_the_local_runner_never_import_ray():
    code = (
        "import sys; from bakeoff.cli.main import app; import bakeoff.runners.local, bakeoff.cli.run;"
        "from typer.testing import CliRunner; assert CliRunner().invoke(app, ['run', '--help']).exit_code == 0;"
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_cli_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


# Resource planning: pure functions over the spec, the estimator and Ray's node list.


def _spec(**candidate):
    return spec_from_dict(
        {
            "name": "x",
            "task": {"builtin": "support-tickets"},
            "grid": {"train_sizes": [100]},
            "candidates": [{"name": "c", **candidate}],
        }
    )


def test_llm_trials_get_the_gpus_the_estimator_says_and_declared_resources_win():
    mixtral = _spec(model="mixtral-8x7b", method="lora")
    (trial,) = expand_grid(mixtral)
    # 93 GB of bf16 weights, and LoRA on the experts keeps a second copy of them until the backward
    assert trial_resources(trial, mixtral, gpu("a100-80gb"), 10).gpus == 3
    assert trial_resources(trial, mixtral, gpu("h100"), 10).gpus == 3
    small = _spec(model="smollm2-135m", method="lora")
    assert trial_resources(expand_grid(small)[0], small, gpu("l4"), 10).gpus == 1
    assert trial_resources(trial, mixtral, None, 10).gpus == 0  # no GPUs in the cluster: a CPU task
    declared = _spec(model="mixtral-8x7b", resources={"gpus": 8, "cpus": 4, "memory_gb": 64})
    need = trial_resources(expand_grid(declared)[0], declared, gpu("a100-80gb"), 10)
    assert (need.gpus, need.cpus, need.memory_gb) == (8, 4, 64)
    assert need.ray_options() == {"num_gpus": 8, "num_cpus": 4, "memory": 64_000_000_000}
    baseline = _spec(model="tfidf-logreg")
    assert trial_resources(expand_grid(baseline)[0], baseline, gpu("h100"), 10).gpus == 0
    qlora = _spec(model="mixtral-8x7b", method="qlora", resources={"gpus": 0})
    with pytest.raises(BakeoffError, match="QLoRA needs a CUDA GPU but `resources.gpus` is 0"):
        trial_resources(expand_grid(qlora)[0], qlora, gpu("h100"), 10)


def test_the_cluster_gpu_type_is_read_from_ray_accelerator_labels():
    nodes = nodes_from_ray(
        [
            {
                "Alive": True,
                "NodeManagerAddress": "10.0.0.1",
                "Resources": {"CPU": 16.0, "GPU": 8.0, "memory": 5e11, "accelerator_type:A100-80G": 1.0},
            },
            {
                "Alive": False,
                "NodeManagerAddress": "10.0.0.2",
                "Resources": {"CPU": 64.0, "GPU": 8.0, "accelerator_type:H100": 1.0},
            },
            {"Alive": True, "NodeManagerAddress": "10.0.0.3", "Resources": {"CPU": 8.0, "memory": 3e10}},
        ]
    )
    assert [n.name for n in nodes] == ["10.0.0.1", "10.0.0.3"] and nodes[0].memory_gb == 500
    assert cluster_gpu(nodes, None).key == "a100-80gb"
    assert cluster_gpu(nodes, "h100").key == "h100"
    assert cluster_gpu([nodes[1]], None) is None
    with pytest.raises(BakeoffError, match="runner.gpu"):
        cluster_gpu([NodeCapacity("n", 2.0, 8.0, 30.0, "TPU-V9")], None)


def test_a_request_no_single_node_meets_is_refused_with_the_numbers():
    spec = _spec(model="tfidf-logreg", resources={"cpus": 12})
    (trial,) = expand_grid(spec)
    need = trial_resources(trial, spec, None, 10)
    two_nodes = [NodeCapacity("a", 0, 8, 30, None), NodeCapacity("b", 0, 8, 30, None)]  # 16 CPUs in all, 8 per node
    with pytest.raises(
        BakeoffError,
        match=r"asks for 0 GPUs, 12 CPUs .* the largest of 2 node\(s\) has 0 GPUs, 8 "
        r"CPUs",
    ):
        refuse_unplaceable({trial: need}, two_nodes)
    refuse_unplaceable({trial: need}, [NodeCapacity("c", 0, 12, 30, None)])


def test_the_runner_and_resources_do_not_change_the_fingerprint():
    base = {"name": "x", "task": {"builtin": "support-tickets"}, "candidates": [{"name": "c", "model": "tfidf-logreg"}]}
    ray_spec = base | {
        "runner": {"kind": "ray", "address": "auto"},
        "candidates": [{"name": "c", "model": "tfidf-logreg", "resources": {"cpus": 2}}],
    }
    assert spec_from_dict(base).fingerprint() == spec_from_dict(ray_spec).fingerprint()
    assert (
        json.dumps(spec_from_dict(ray_spec).model_dump(mode="json")["runner"])
        == '{"kind": "ray", "address": "auto", "gpu": null, "threads": "auto", "progress_every_s": 30.0, '
        '"connect_timeout_s": 30.0}'
    )


def test_progress_prints_plain_lines_with_each_running_trials_step_and_loss(tmp_path):
    from bakeoff.runners.ray_progress import RayProgress

    log = io.StringIO()
    progress = RayProgress(Console(file=log, width=200), total=3, already_done=1, run_dir=tmp_path)
    progress.refresh({"a/n20/s0": {"step": 0, "loss": None, "node": "n1"}}, {"a/n20/s0", "b/n20/s0"})
    progress.refresh(
        {"a/n20/s0": {"step": 4, "loss": 1.2345, "node": "n1"}}, {"a/n20/s0", "b/n20/s0"}
    )  # within 30 s: quiet
    progress.refresh(
        {"b/n20/s0": {"step": 2, "loss": 0.5, "node": "n2"}, "gone/n1/s0": {"step": 9}}, {"a/n20/s0", "b/n20/s0"}
    )
    progress.finished("a/n20/s0", None)
    progress.finished("b/n20/s0", "its worker process died")
    expected = [
        "1 of 3 trials already done (skipped)",
        "started a/n20/s0 (starting on n1) [trials: 1 done, 1 running, 0 failed]",
        "started b/n20/s0 (step 2, loss 0.500 on n2) [trials: 1 done, 1 running, 0 failed]",
        "done a/n20/s0 [2 of 3 done, 0 failed]",
        "b/n20/s0 failed: its worker process died [2 of 3 done, 1 failed]",
    ]
    # Timestamped (UTC) on a console that is not a terminal, and the same lines in the run folder's progress.log.
    for written in (log.getvalue(), (tmp_path / "progress.log").read_text()):
        stamps, texts = zip(*(line.split(" ", 1) for line in written.splitlines()))
        assert list(texts) == expected and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) for s in stamps)
