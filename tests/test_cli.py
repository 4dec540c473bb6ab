"""The real CLI end to end on a BANKING77 slice, resume after kill -9, and clear errors for bad input."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.integration

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def bakeoff(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def banking_config(tmp_path, banking77, tiny_folder, **training):
    config = {
        "name": "banking-e2e",
        "task": {
            "data": {
                "path": str(banking77.train),
                "test_path": str(banking77.test),
                "label_column": "category",
                "max_per_label": 24,
                "labels": banking77.labels,
                "out_of_scope_labels": banking77.out_of_scope,
            },
            "split": {"validation_fraction": 0.15},
        },
        "candidates": [
            {"name": "tfidf", "model": "tfidf-logreg"},
            {"name": "minilm", "model": "minilm-logreg"},
            {"name": "tiny zero-shot", "model": str(tiny_folder), "method": "zero-shot"},
            {"name": "tiny lora", "model": str(tiny_folder), "method": "lora"},
        ],
        "training": {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "max_validation_items": 20, **training},
        "grid": {"train_sizes": [30, 100]},
        "evaluation": {
            "max_test_items": 100,
            "max_train_items": 30,
            "bootstrap_samples": 200,
            "max_perturbed_items": 40,
            "max_validation_items": 30,
            "max_out_of_scope_items": 60,
            "perturbations": [{"name": "typos", "params": {"rate": 0.1}}, {"name": "lowercase"}, {"name": "truncate"}],
        },
        "output": {"dir": str(tmp_path / "run")},
        # Fixed, not `auto`: log-probs differ in the last bits between 1 and 2 threads (~2e-6 on the tiny model),
        # and the resume tests compare metrics exactly with an uninterrupted run that may have picked another count.
        "runner": {"threads": 1},
    }
    path = tmp_path / "banking.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_on_banking77_stores_consistent_numbers_and_resumes(tmp_path, banking77, tiny_folder):
    config = banking_config(tmp_path, banking77, tiny_folder)
    assert bakeoff("validate", config).returncode == 0

    first = bakeoff("run", config)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "7 trials run, 0 already done" in first.stderr
    assert "tfidf" in first.stdout and "tiny lora" in first.stdout

    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["schema"] == "bakeoff.results/1" and results["run"]["labels"] == sorted(banking77.labels)
    trials = {t["trial_id"]: t for t in results["trials"]}
    assert len(trials) == 7 and all(t["status"] == "done" for t in trials.values())
    for trial_id, trial in trials.items():
        saved = np.load(run / "trials" / trial_id.replace("/", "__") / "predictions.npz")
        test = trial["result"]["metrics"]["test"]
        assert test["items"] == 100 == len(saved["y_true"])
        assert test["accuracy"] == pytest.approx(float((saved["probs"].argmax(1) == saved["y_true"]).mean()))
        assert test["accuracy_ci"][0] <= test["accuracy"] <= test["accuracy_ci"][1]
        np.testing.assert_allclose(saved["probs"].sum(1), 1.0, atol=1e-6)
    # Real baselines on real data are far above chance (10%); a random-weight LLM is not.
    assert trials["tfidf/n100/s0"]["result"]["metrics"]["test"]["accuracy"] > 0.6
    assert trials["minilm/n100/s0"]["result"]["metrics"]["test"]["accuracy"] > 0.6
    assert (
        trials["tfidf/n100/s0"]["result"]["metrics"]["train"]["accuracy"]
        >= trials["tfidf/n100/s0"]["result"]["metrics"]["test"]["accuracy"]
    )
    lora = trials["tiny lora/n100/s0"]["result"]
    assert lora["training"]["steps"] > 0 and lora["timings"]["train_tokens_per_s"] > 0
    assert (run / "trials" / "tiny lora__n100__s0" / "adapter" / "adapter_model.safetensors").is_file()
    assert trials["tiny zero-shot/n0/s0"]["result"]["training"] is None
    assert lora["model"]["prompt_style"] == "plain", "fine-tuned: the shortest prompt"
    assert trials["tiny zero-shot/n0/s0"]["result"]["model"]["prompt_style"] == "chat", "zero-shot: the chat template"
    # Beyond accuracy: every trial stores robustness, calibration and out-of-scope numbers; baselines behave sanely.
    for trial in trials.values():
        m = trial["result"]["metrics"]
        assert set(m["robustness"]["perturbations"]) == {"typos", "lowercase", "truncate"}
        assert m["out_of_scope"]["items_out_of_scope"] == 30 and "threshold" in m["out_of_scope"]
        assert 0 <= m["calibration"]["ece"] <= 1 and m["calibration"]["temperature"] > 0
        assert m["test_clean"]["items"] <= m["test"]["items"]
    tfidf = trials["tfidf/n100/s0"]["result"]["metrics"]
    # True on any data (a truncation can raise accuracy: on the built-in tickets it cuts off the distractor):
    # TF-IDF lowercases its input, so `lowercase` cannot move it; `truncate` changed texts, and each drop is
    # measured against the clean accuracy on the same items.
    robustness = tfidf["robustness"]
    assert robustness["perturbations"]["lowercase"]["accuracy"] == robustness["clean"]["accuracy"]
    assert robustness["perturbations"]["truncate"]["changed_texts"] > 0
    for perturbation in robustness["perturbations"].values():
        assert perturbation["accuracy_drop"] == pytest.approx(
            robustness["clean"]["accuracy"] - perturbation["accuracy"]
        )
    assert tfidf["out_of_scope"]["mean_confidence_out_of_scope"] < tfidf["out_of_scope"]["mean_confidence_in_scope"]
    assert tfidf["out_of_scope"]["by_score"]["max_prob"]["auroc"] > 0.6
    analysis = results["run"]["analysis"]
    assert set(analysis["learning_curves"]) == {"tfidf", "minilm", "tiny lora"}
    assert {(c["a"], c["b"]) for c in analysis["paired_comparisons"] if c["train_size"] == 100} == {
        ("minilm", "tfidf"),
        ("minilm", "tiny lora"),
        ("tfidf", "tiny lora"),
    }
    estimates = analysis["gpu_estimates"]
    assert {e["hardware"]["key"] for e in estimates} == {"l4", "a10g", "a100-80gb", "h100"} and len(estimates) == 4
    assert estimates[0]["architecture"]["params_total"] == lora["model"]["architecture"]["params_total"]
    assert lora["efficiency"]["measured_step_s"] > 0 and lora["efficiency"]["estimated_step_s"] > 0
    assert lora["timings"]["latency_ms_p50"] <= lora["timings"]["latency_ms_p95"] <= lora["timings"]["latency_ms_p99"]
    summary = (run / "summary.md").read_text()
    assert "| tfidf | fit | 100 |" in summary and "best test macro-F1" in summary
    assert "## Estimated on GPUs (not measured)" in summary and "## Speed and memory, measured here" in summary

    # The report and the recommendation: written by `run`, rebuilt from the store by `report`, re-decided by
    # `recommend`.
    html = (run / "report.html").read_text()
    assert "Recommendation" in html and "tfidf" in html and html.count("<svg") >= 4
    # A random-weight tiny LLM cannot beat real baselines: the choice is a baseline, and the rationale quotes its
    # number.
    choice = results["recommendation"]["choice"]
    assert choice in {"tfidf", "minilm"}
    chosen_f1 = trials[f"{choice}/n100/s0"]["result"]["metrics"]["test"]["macro_f1"]
    assert f"macro-F1 {100 * chosen_f1:.1f}%" in results["recommendation"]["rationale"]
    assert "Recommendation:" in first.stdout
    (run / "report.html").unlink()
    rebuilt = bakeoff("report", run)
    assert rebuilt.returncode == 0 and (run / "report.html").is_file() and "Recommendation:" in rebuilt.stdout
    own = (run / "results.json").read_text()
    floor = bakeoff("recommend", run, "min_macro_f1=0.999")
    assert floor.returncode == 0 and "No candidate meets every constraint" in floor.stdout
    # a what-if is written beside the run's own files, which keep the config's decision
    assert "what-if (min_macro_f1=0.999)" in floor.stderr and (run / "results.json").read_text() == own
    whatif = json.loads((run / "whatif" / "results.json").read_text())["recommendation"]
    assert whatif["answers"]["min_macro_f1"] == 0.999 and (run / "whatif" / "report.html").is_file()
    # a mistyped answer (max_gpus: zzz) is asked again
    answers = "\n".join(["narrow", "", "", "", "a10g", "zzz", "", "", "", "", "30", "0.2", ""]) + "\n"
    asked = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "recommend", str(run), "--interactive"],
        input=answers,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert asked.returncode == 0, asked.stderr[-2000:]
    assert "max_gpus: 'zzz' is not a int; try again" in asked.stdout + asked.stderr
    decided = json.loads((run / "whatif" / "results.json").read_text())["recommendation"]
    assert decided["answers"]["labeled_examples"] == 30 and decided["answers"]["out_of_scope_share"] == 0.2
    assert bakeoff("recommend", run, "sla_p95_ms=-5").returncode == 2

    again = bakeoff("run", config)
    assert again.returncode == 0 and "0 trials run, 7 already done" in again.stderr


def _trial_rows(database):
    with sqlite3.connect(database) as db:
        return {
            row[0]: row[1:] for row in db.execute("SELECT trial_id, status, attempts, finished_at, result FROM trials")
        }


def _kill_point_reached(point, run, started):
    database = run / "results.sqlite"
    if point == "data prep":
        return time.time() - started > 2.5  # still importing or preparing data: no store yet
    if not database.exists():
        return False
    try:
        rows = _trial_rows(database)
    except sqlite3.OperationalError:  # the file exists but its tables are being created
        return False
    running_llm = [t for t, r in rows.items() if t.startswith("tiny lora") and r[0] == "running"]
    if point == "mid-training":
        return bool(running_llm) and sum(r[0] == "done" for r in rows.values()) >= 4
    if point == "mid-evaluation":
        return any((run / "trials" / t.replace("/", "__") / "adapter").exists() for t in running_llm)
    if point == "writing results":
        return len(rows) == 7 and all(r[0] == "done" for r in rows.values()) and not (run / "results.json").exists()
    raise ValueError(point)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, banking77, tiny_folder):
    folder = tmp_path_factory.mktemp("reference")
    assert bakeoff("run", banking_config(folder, banking77, tiny_folder, epochs=6)).returncode == 0
    return {t: json.loads(r[3])["metrics"] for t, r in _trial_rows(folder / "run" / "results.sqlite").items()}


@pytest.mark.parametrize("point", ["data prep", "mid-training", "mid-evaluation", "writing results"])
def test_kill_9_then_resume_keeps_finished_trials_and_equals_an_uninterrupted_run(
    tmp_path, banking77, tiny_folder, point, uninterrupted
):
    config = banking_config(tmp_path, banking77, tiny_folder, epochs=6)
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "bakeoff.cli", "run", str(config)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started, deadline = time.time(), time.time() + 300
    while time.time() < deadline and process.poll() is None and not _kill_point_reached(point, run, started):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the run finished before reaching '{point}'"
    before = _trial_rows(run / "results.sqlite") if (run / "results.sqlite").exists() else {}
    done_before = {t: r for t, r in before.items() if r[0] == "done"}

    resumed = bakeoff("run", config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _trial_rows(run / "results.sqlite")
    with sqlite3.connect(run / "results.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(after) == 7 and {r[0] for r in after.values()} == {"done"}
    for trial_id, row in done_before.items():
        assert after[trial_id][1:3] == row[1:3], f"{trial_id} was recomputed"
    assert {t: json.loads(r[3])["metrics"] for t, r in after.items()} == uninterrupted
    assert json.loads((run / "results.json").read_text())["schema"] == "bakeoff.results/1"


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("name: [oops\n", "malformed YAML"),
        (
            "name: x\ntask: {builtin: support-tickets}\ncandidates: [{name: a, model: tfidf-logreg}]\n"
            "training: {epoch: 3}\n",
            "training.epoch: unknown key; did you mean `epochs`",
        ),
        (
            "name: x\ntask: {builtin: support-tickets}\ncandidates: [{name: a, model: ./no/such/model}]\n",
            "model path not found",
        ),
        (
            "name: x\ntask: {builtin: support-tickets}\ncandidates: [{name: a, model: some-org/not-cached-model}]\n",
            "nor in the local Hugging Face cache",
        ),
        (
            "name: x\ntask: {data: {path: missing.csv}}\ncandidates: [{name: a, model: tfidf-logreg}]\n",
            "data file not found",
        ),
        (
            "name: x\ntask: {builtin: support-tickets}\ncandidates: [{name: a, model: tfidf-logreg}]\noutput: {dir: "
            "/dev/null/run}\n",
            "cannot write to the run folder",
        ),
    ],
)
def test_user_errors_exit_2_with_one_clear_message(tmp_path, yaml_text, message):
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    result = bakeoff("run", config)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def test_debug_shows_the_traceback_that_is_otherwise_hidden(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("name: [oops\n")
    plain = bakeoff("run", config)
    debug = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "--debug", "run", str(config)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr


def test_the_cli_silences_sklearns_regression_guess_for_many_classes():
    """77 intents over 100 examples is a classification task by the config; sklearn's "more classes than half
    the samples: a regression target?" note only clutters a run's output."""
    import warnings
    from unittest import mock

    from sklearn.linear_model import LogisticRegression

    from bakeoff.cli.main import _quiet_libraries

    features, labels = np.eye(30), [f"intent {i % 25}" for i in range(30)]
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("default")
        LogisticRegression(max_iter=50).fit(features, labels)
    assert any("greater than 50%" in str(w.message) for w in before)  # the note this test is about
    with warnings.catch_warnings(record=True) as after, mock.patch.dict(os.environ):  # filters and env restored
        warnings.simplefilter("default")
        _quiet_libraries()
        LogisticRegression(max_iter=50).fit(features, labels)
    assert not any("greater than 50%" in str(w.message) for w in after)


def test_python_dash_m_bakeoff_is_the_cli():
    """`python -m bakeoff` runs the same CLI as `bakeoff` (and `python -m bakeoff.cli`)."""
    done = subprocess.run(
        [sys.executable, "-m", "bakeoff", "--help"], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: bakeoff" in done.stdout and "estimate" in done.stdout and "loadtest" in done.stdout
    wrong = subprocess.run([sys.executable, "-m", "bakeoff", "nonsense"], capture_output=True, text=True, env=ENV)
    assert wrong.returncode == 2 and "No such command 'nonsense'" in wrong.stderr
