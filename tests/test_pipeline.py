"""`bakeoff.run(spec)`: the run's analysis, with the LLM judge, is computed once and stored, and every reader
(results.json, `bakeoff.load_run`, the MLflow export, live and after) decides from it: one recommendation.

A generation run, the retrieval baseline against a tiny LoRA LLM, judged by a stand-in that always prefers the
reply that is not the baseline's. chrF favours retrieval (it returns real replies) and the judge the LLM, so a
reader that recomputed the analysis without the judge would recommend otherwise (it did: `load_run` and the
MLflow export used to). Seconds on a CPU.
"""

import json
import shutil

import pytest

pytest.importorskip("mlflow")

import bakeoff
from bakeoff.config import spec_from_dict
from bakeoff.store import ResultStore

BASELINE = "retrieval"


def _config(run_dir, tiny_folder, live_store) -> dict:
    return {
        "name": "judged-replies",
        "task": {
            "type": "generation",
            "builtin": "support-tickets-replies",
            "builtin_examples": 200,
            "decoding": {"max_new_tokens": 8},
        },
        "candidates": [{"name": BASELINE, "model": "tfidf-retrieval"}, {"name": "tiny", "model": str(tiny_folder)}],
        "grid": {"train_sizes": [16]},
        "training": {"epochs": 1, "batch_size": 8, "max_validation_items": 8, "early_stopping_patience": 0},
        "evaluation": {
            "max_test_items": 10,
            "max_train_items": 4,
            "bootstrap_samples": 100,
            "max_perturbed_items": 10,
            "max_validation_items": 10,
            "max_out_of_scope_items": 4,
            "latency_repeats": 3,
            "perturbations": [{"name": "lowercase"}],
            "judge": {"candidate": "tiny", "baseline": BASELINE, "max_items": 10},
        },
        "efficiency": {"gpus": ["a10g"]},
        "tracking": {"mlflow": {"uri": str(live_store), "experiment": "live"}},
        "output": {"dir": str(run_dir)},
    }


def not_the_baseline(run_dir):
    """A judge that prefers the reply the baseline did not write (ties when both or neither are its)."""
    written: set[str] = set()

    def judge(prompt: str) -> str:
        if not written:
            path = run_dir / "trials" / f"{BASELINE}__n16__s0" / "predictions.jsonl"
            written.update(json.loads(line)["output"] for line in path.read_text().splitlines())
        a = prompt.split("Reply A:\n", 1)[1].split("\n\nReply B:", 1)[0]
        b = prompt.split("Reply B:\n", 1)[1].split("\n\n", 1)[0]
        return "TIE" if (a in written) == (b in written) else "B" if a in written else "A"

    return judge


@pytest.fixture(scope="module")
def judged(tmp_path_factory, tiny_folder):
    root = tmp_path_factory.mktemp("pipeline")
    run_dir = root / "run"
    spec = spec_from_dict(_config(run_dir, tiny_folder, root / "live-mlruns"))
    with pytest.MonkeyPatch.context() as patch:  # the judge is the only stand-in: the rest is the real pipeline
        patch.setattr(
            "bakeoff.runners.pipeline.run_judge", lambda spec, trials, folder: (not_the_baseline(folder), "a stand-in")
        )
        run = bakeoff.run(spec)
    return {"run": run, "dir": run_dir, "root": root, "results": json.loads((run_dir / "results.json").read_text())}


def parent_tags(store, experiment):
    from mlflow.tracking import MlflowClient

    from bakeoff.tracking.mlflow_export import resolve_uri

    client = MlflowClient(tracking_uri=resolve_uri(str(store)))
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return parent.data.tags


def test_the_judged_recommendation_is_the_same_everywhere(judged):
    from bakeoff.tracking.mlflow_export import export_run

    run, results = judged["run"], judged["results"]
    stored = results["recommendation"]
    judge = results["run"]["analysis"]["judge"]
    assert judge["judged_by"] == "a stand-in" and [r["candidate"] for r in judge["records"]] == ["tiny"]
    assert stored["choice"] == "tiny" and "judge win-rate" in stored["rationale"]

    assert run.outcome.ran == 2 and run.outcome.failed == 0 and run.outcome.outputs[1] == judged["dir"] / "results.json"
    loaded = bakeoff.load_run(judged["dir"])
    assert loaded == run  # `bakeoff.run` returns the run as `load_run` reads it back
    assert loaded.recommendation.model_dump(mode="json", include=set(stored)) == stored
    assert bakeoff.recommend(loaded).rationale == stored["rationale"]

    live = parent_tags(judged["root"] / "live-mlruns", "live")  # `tracking.mlflow`, logged as the run ended
    export_run(judged["dir"], str(judged["root"] / "exported"))  # `bakeoff export mlflow RUN_DIR`, after
    exported = parent_tags(judged["root"] / "exported", "judged-replies")
    for tags in (live, exported):
        assert tags["bakeoff.choice"] == "tiny" and tags["bakeoff.rationale"] == stored["rationale"]


def test_a_store_without_its_analysis_is_analysed_when_read_without_the_judge_and_says_so(judged, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(judged["dir"], old, ignore=shutil.ignore_patterns("*.lock"))
    store = ResultStore(old / "results.sqlite")
    try:
        store.set_meta("analysis", None)  # as run folders written before the runner stored its analysis
    finally:
        store.close()
    run = bakeoff.load_run(old)
    analysis = run.results.run.analysis
    assert "holds no analysis" in analysis["computed_when_read"]
    assert analysis["judge"]["records"] == [] and "without the judge" in analysis["judge"]["skipped"]
    # Without the judge, chrF decides: the reason the runner stores the judged analysis for every reader.
    assert run.recommendation.choice != judged["results"]["recommendation"]["choice"]
    assert "judge win-rate" not in run.recommendation.rationale
