"""Decision, report and cross-trial analysis for extraction and generation runs (recorded results, no models)."""

import json

import numpy as np
import pytest
from decision_fixture import typed
from task_fixture import extraction_results, extraction_test, generation_results, generation_test

from bakeoff.decision.engine import recommend, weights, with_answers
from bakeoff.decision.inputs import DecisionInputs, specificity
from bakeoff.evaluation.analysis import analyse
from bakeoff.evaluation.extraction_metrics import extraction_item_scores, extraction_quality
from bakeoff.evaluation.generation_metrics import generation_item_scores, generation_quality, out_of_scope_generation
from bakeoff.report.html import render
from bakeoff.report.summary import markdown, results_json
from bakeoff.results import RunResults


def test_fixture_keys_are_the_metric_modules_keys():
    real = extraction_quality(['{"order_id": "1", "amount": null}'], [{"order_id": "1"}], ["1"], ["order_id", "amount"])
    assert set(extraction_test(0.8, 0.9)) == set(real)
    assert set(generation_test(0.5)) == set(generation_quality(["a b"], ["a c"]))
    oos = generation_results()["trials"][0]["result"]["metrics"]["out_of_scope"]
    assert set(oos) == set(out_of_scope_generation(["I can't help with that"]))


def test_task_specificity_follows_the_task_type_unless_answered():
    assert specificity("auto", "generation") == "open-ended"
    assert specificity("auto", "extraction") == "narrow" and specificity("auto", "classification") == "narrow"
    assert specificity("narrow", "generation") == "narrow"
    # open-ended generation measured directly: quality keeps its full weight; robustness and out-of-scope gain
    auto_generation = DecisionInputs.of({}, "generation")
    assert auto_generation.task_specificity == "open-ended"
    generation = weights(auto_generation)
    proxy = weights(DecisionInputs.of({"task_specificity": "open-ended"}, "classification"))
    narrow = weights(DecisionInputs.of({"task_specificity": "narrow"}, "generation"))
    assert generation["quality"] == 1.0 and proxy["quality"] == 0.6
    assert generation["robustness"] > narrow["robustness"] and generation["out_of_scope"] > narrow["out_of_scope"]


def test_extraction_reads_record_exact_match_and_a_tied_crf_means_no_llm():
    outcome = recommend(typed(extraction_results()))
    evidence = {e["candidate"]: e for e in outcome["evidence"]}
    assert evidence["smol-lora"]["quality_metric"] == "record_exact_match"
    assert evidence["smol-lora"]["quality"] == pytest.approx(0.80)
    assert evidence["crf"]["perturbed_accuracy"] == pytest.approx(0.68)  # mean_perturbed_record_exact_match
    assert outcome["answers"]["task_type"] == "extraction" and outcome["answers"]["task_specificity"] == "narrow"
    assert outcome["choice"] == "crf" and outcome["no_llm_needed"]
    assert "record exact match 78.0%" in outcome["rationale"] and "open-ended" not in outcome["rationale"]
    strict = recommend(with_answers(typed(extraction_results()), {"min_macro_f1": 0.9}))
    assert "record exact match 80.0%" in strict["excluded"]["smol-lora"] and strict["choice"] is None


def test_generation_open_ended_weighs_robustness_and_fallback():
    outcome = recommend(typed(generation_results()))
    assert outcome["answers"]["task_specificity"] == "open-ended"
    evidence = {e["candidate"]: e for e in outcome["evidence"]}
    assert evidence["moe-llm"]["quality_metric"] == "chrf" and evidence["moe-llm"]["quality"] == pytest.approx(0.68)
    assert evidence["dense-llm"]["oos_fallback_rate"] == 0.9
    # dense: 0.55 + 0.8 * 0.50 + 0.4 * 0.9 = 1.31; moe: 0.68 + 0.8 * 0.40 + 0.4 * 0.3 = 1.12 (equal costs)
    assert outcome["choice"] == "dense-llm" and not outcome["no_llm_needed"]
    assert "chrF 55.0%" in outcome["rationale"] and "falls back on 90% of out-of-scope items" in outcome["rationale"]
    assert "label scoring" not in outcome["rationale"]  # the proxy caution is for classification runs only

    # Told the task is narrow, chrF leads: moe 0.68 + 0.3 * 0.40 + 0.1 * 0.3 = 0.83 > dense 0.79
    narrow = recommend(with_answers(typed(generation_results()), {"task_specificity": "narrow"}))
    assert narrow["choice"] == "moe-llm"
    assert any(line.startswith("if 5% of traffic is out of scope: dense-llm") for line in narrow["sensitivity"])


def test_generation_quality_is_the_judge_win_rate_when_every_candidate_was_judged():
    outcome = recommend(typed(generation_results(judge=True)))
    evidence = {e["candidate"]: e for e in outcome["evidence"]}
    assert {e["quality_metric"] for e in evidence.values()} == {"judge_win_rate"}
    assert evidence["retrieval"]["quality"] == 0.5 and evidence["retrieval"]["quality_ci"] == (0.5, 0.5)
    assert evidence["dense-llm"]["quality"] == 0.8 and "against retrieval" in evidence["dense-llm"]["quality_note"]
    assert outcome["choice"] == "dense-llm" and "judge win-rate 80.0%" in outcome["rationale"]
    partial = generation_results(judge=True)
    partial["run"]["analysis"]["judge"]["records"].pop()  # moe-llm not judged: all fall back to chrF
    assert {e["quality_metric"] for e in recommend(typed(partial))["evidence"]} == {"chrf"}


@pytest.mark.parametrize("kind", ["extraction", "generation"])
def test_reports_show_the_tasks_own_metrics(kind):
    results = extraction_results() if kind == "extraction" else generation_results(judge=True)
    recommendation = recommend(typed(results))
    text = markdown("fixture", typed(results), recommendation)
    page = render(typed(results), recommendation)
    stored = json.loads(results_json(results["run"], results["trials"], recommendation))
    parsed = RunResults.from_stored(stored)  # the typed records accept the new keys
    if kind == "extraction":
        assert "| smol-lora | lora | 200 | 0 | 80.0 [76.0, 84.0] | 90.0 [86.0, 94.0] | 98.0 | 2.0 |" in text
        assert "best test record exact match is smol-lora (80.0%)" in text
        assert "crf - smol-lora record exact match -2.0 pts [-7.0, +3.0]: tie (CI includes 0)" in text
        assert "record exact match at your data size" in page and "Per-field F1" in page
        assert parsed.trials[1].metrics.test.record_exact_match.value == 0.8
    else:
        assert (
            "| dense-llm | lora | 200 | 0 | 55.0 [52.0, 58.0] | 40.0 [37.0, 43.0] | 30.0 | 5.0 | 80.0 [72.0, 88.0]"
            in text
        )
        assert "| retrieval | fit | 200 | 0 | 35.0 [32.0, 38.0]" in text and "50 (baseline)" in text
        assert "dense-llm vs retrieval: win-rate 80.0% [72.0, 88.0] over 100 items" in text
        assert "| dense-llm | 200 | - | 55.0 | 55.0 | 50.0 (typos 50.0) | - | 90.0 | - | no |" in text
        assert "judge win-rate at your data size" in page and "LLM judge win-rate" in page and "fallback 90%" in page
        assert parsed.trials[0].metrics.test.chrf.ci_low == pytest.approx(0.42)
    assert "<script" not in page and "macro-F1 %" not in text
    assert "Confusion matrices" not in page  # classification only: no empty section


def _write_trial(run_dir, trial_id, scores, rows):
    folder = run_dir / "trials" / trial_id.replace("/", "__")
    folder.mkdir(parents=True)
    np.savez(folder / "item_scores.npz", **scores)
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_analysis_compares_item_scores_and_runs_the_judge(tmp_path):
    texts = [f"ticket {i}" for i in range(30)]
    references = [f"we will fix ticket {i} today" for i in range(30)]
    outputs = {
        "good": [f"we will fix ticket {i} today" for i in range(30)],
        "bad": ["ok"] * 30,
    }
    results = generation_results()
    trials = []
    for name, written in outputs.items():
        trial = results["trials"][0] | {"trial_id": f"{name}/n200/s0", "candidate": name, "train_size": 200}
        trials.append(trial)
        rows = [{"text": t, "target": r, "output": o} for t, r, o in zip(texts, references, written)]
        _write_trial(tmp_path, trial["trial_id"], generation_item_scores(written, references), rows)
    spec = results["run"]["spec"] | {
        "evaluation": {"bootstrap_samples": 200, "judge": {"candidate": "good", "baseline": "bad", "max_items": 10}}
    }

    def longer_wins(prompt):
        a = prompt.split("Reply A:\n", 1)[1].split("\n\nReply B:", 1)[0]
        b = prompt.split("Reply B:\n", 1)[1].split("\n\n", 1)[0]
        return "A" if len(a) > len(b) else "B"

    analysis = analyse(trials, tmp_path, spec, judge=longer_wins)
    assert analysis["main_metric"] == "chrf" and analysis["learning_curves"]["good"]["metric"] == "chrf"
    (comparison,) = analysis["paired_comparisons"]
    assert (comparison["a"], comparison["b"], comparison["main_metric"]) == ("bad", "good", "chrf")
    assert comparison["chrf"]["difference"] < 0 and not comparison["tie"]
    (record,) = analysis["judge"]["records"]
    assert record["candidate"] == "good" and record["win_rate"] == 1.0 and record["items"] == 10
    skipped = analyse(trials, tmp_path, spec)  # no judge passed (a report rebuild): recorded, not run
    assert skipped["judge"]["records"] == [] and "no judge" in skipped["judge"]["skipped"]

    extraction = extraction_results()
    targets = [{"order_id": f"A-{i}"} for i in range(20)]
    ids = [f"order A-{i}" for i in range(20)]
    for name, right in (("smol-lora", 20), ("crf", 10)):
        written = [json.dumps(t) if i < right else "{}" for i, t in enumerate(targets)]
        _write_trial(tmp_path / "x", f"{name}/n200/s0", extraction_item_scores(written, targets, ids, ["order_id"]), [])
    members = [t for t in extraction["trials"] if t["train_size"] == 200]
    result = analyse(members, tmp_path / "x", extraction["run"]["spec"])
    (comparison,) = result["paired_comparisons"]
    assert comparison["main_metric"] == "record_exact_match"
    assert comparison["record_exact_match"]["difference"] == pytest.approx(-0.5)  # crf - smol-lora


def test_decision_inputs_are_typed_frozen_and_what_ifs_are_validated():
    import pydantic

    d = DecisionInputs.of({"sla_p95_ms": 100}, "extraction")
    assert (d.task_type, d.task_specificity, d.sla_p95_ms, d.gpu) == ("extraction", "narrow", 100, "a10g")
    what_if = d.but(out_of_scope_share=0.3)
    assert what_if.out_of_scope_share == 0.3 and d.out_of_scope_share == 0.0, "a what-if is a copy"
    with pytest.raises(pydantic.ValidationError):
        d.but(min_macro_f1=2.0)  # above the config's bound
    with pytest.raises(pydantic.ValidationError):
        d.sla_p95_ms = 5  # frozen
    with pytest.raises(pydantic.ValidationError, match="no_such_answer"):
        DecisionInputs.of({"no_such_answer": 1}, "classification")
