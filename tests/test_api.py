"""The notebook API (`bakeoff.load_run`, `bakeoff.recommend`) and the typed records under it, on a tiny real run."""

import json
import subprocess
import sys

import pytest
from decision_fixture import results as recorded_results
from pydantic import ValidationError
from run_fixture import folder_digest, make_run

import bakeoff
from bakeoff.errors import BakeoffError, ConfigError
from bakeoff.results import RunResults, Stat, TrialRecord


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api") / "run"
    return make_run(folder, [{"name": "tfidf", "model": "tfidf-logreg"}], [20, 60])


def test_load_run_gives_typed_trials_equal_to_results_json(run_dir):
    stored = json.loads((run_dir / "results.json").read_text())
    before = folder_digest(run_dir)
    run = bakeoff.load_run(run_dir)
    assert folder_digest(run_dir) == before  # reading writes nothing, not even the analysis
    assert run.name == "tiny-tickets" and [t.trial_id for t in run.trials] == [t["trial_id"] for t in stored["trials"]]
    for trial, raw in zip(run.trials, stored["trials"]):
        assert isinstance(trial, TrialRecord) and trial.model_name == "tfidf-logreg" and trial.status == "done"
        test = raw["result"]["metrics"]["test"]
        assert trial.metrics.test.accuracy == Stat(
            value=test["accuracy"], ci_low=test["accuracy_ci"][0], ci_high=test["accuracy_ci"][1]
        )
        assert trial.metrics.test.macro_f1.value == test["macro_f1"]
        assert trial.timings.latency_ms_p95 == raw["result"]["timings"]["latency_ms_p95"]
        assert trial.training is None and trial.model["kind"] == "baseline"
    assert run.trial("tfidf/n60/s0").train_size == 60
    assert run.recommendation.choice == stored["recommendation"]["choice"]
    assert run.recommendation.rationale == stored["recommendation"]["rationale"]


def test_frame_has_the_main_metrics_with_interval_columns(run_dir):
    run = bakeoff.load_run(run_dir)
    frame = run.frame
    assert list(frame.index) == ["tfidf/n20/s0", "tfidf/n60/s0"]
    row = frame.loc["tfidf/n60/s0"]
    trial = run.trial("tfidf/n60/s0")
    assert row["test_macro_f1"] == trial.metrics.test.macro_f1.value
    assert (row["test_macro_f1_ci_low"], row["test_macro_f1_ci_high"]) == (
        trial.metrics.test.macro_f1.ci_low,
        trial.metrics.test.macro_f1.ci_high,
    )
    assert row["test_accuracy_ci_low"] <= row["test_accuracy"] <= row["test_accuracy_ci_high"]
    assert row["train_size"] == 60 and row["method"] == "fit" and row["peak_memory_mb"] > 0
    assert frame.equals(run.to_frame())


def test_recommend_redecides_with_other_answers_and_writes_nothing(run_dir):
    run = bakeoff.load_run(run_dir)
    before = folder_digest(run_dir)
    same = bakeoff.recommend(run)
    assert same.choice == run.recommendation.choice and same.answers == run.recommendation.answers
    strict = bakeoff.recommend(run_dir, min_macro_f1=0.999)
    assert strict.choice is None and "below the floor 100%" in strict.excluded["tfidf"]
    fewer = bakeoff.recommend(run, labeled_examples=20)
    assert fewer.answers["labeled_examples"] == 20 and "measured at 20" in fewer.rationale
    with pytest.raises(ConfigError, match="sla_p95"):
        bakeoff.recommend(run, sla_p95=100)
    assert folder_digest(run_dir) == before


def test_import_bakeoff_and_load_run_import_no_torch(run_dir):
    code = (
        "import sys, bakeoff; bakeoff.run; assert 'torch' not in sys.modules and 'pandas' not in sys.modules; "
        f"run = bakeoff.load_run({str(run_dir)!r}); run.frame; assert 'torch' not in sys.modules, 'torch'; "
        "print(run.recommendation.choice)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "tfidf"


def test_records_parse_the_recorded_fixture_and_refuse_unknown_keys():
    stored = recorded_results()
    results = RunResults.from_stored(stored)
    assert [t.candidate for t in results.trials][:2] == ["big-llm", "big-llm"]
    assert results.trials[1].metrics.test.macro_f1 == Stat(value=0.93, ci_low=0.90, ci_high=0.96)
    assert results.trials[0].timings.items_per_s_by_batch == {1: 12.5, 16: 50.0}
    stored["trials"][0]["result"]["timings"]["latency_ms_p95_typo"] = 1.0
    with pytest.raises(ValidationError, match="latency_ms_p95_typo"):
        RunResults.from_stored(stored)
    with pytest.raises(ValidationError):
        Stat(value=0.5, ci_low=0.4, ci_high=0.6).value = 0.7  # frozen


def test_load_run_of_a_folder_without_a_store_is_a_clear_error(tmp_path):
    with pytest.raises(BakeoffError, match="not a bakeoff run folder"):
        bakeoff.load_run(tmp_path)
