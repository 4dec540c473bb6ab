"""The decision engine on recorded results: answers move the recommendation the expected way, with reasons."""

import re
import sys

from decision_fixture import results, typed

from bakeoff.decision.engine import recommend, with_answers


def test_decision_and_report_layers_do_not_import_torch():
    import subprocess

    code = (
        "import sys, bakeoff.decision.engine, bakeoff.report.summary, bakeoff.report.html; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_default_answers_pick_the_best_quality_with_its_numbers():
    outcome = recommend(typed(results()))
    assert outcome["choice"] == "big-llm"
    assert "macro-F1 93.0%" in outcome["rationale"] and "fine-tune big-llm" in outcome["rationale"]


def test_a_tight_monthly_budget_excludes_the_expensive_model_and_says_by_how_much():
    outcome = recommend(with_answers(typed(results()), {"max_usd_per_month": 1000}))
    assert outcome["choice"] == "small-llm"
    assert "per month exceeds $1,000" in outcome["excluded"]["big-llm"]


def test_a_tight_sla_excludes_the_slow_model():
    outcome = recommend(with_answers(typed(results()), {"sla_p95_ms": 50}))
    assert outcome["choice"] == "small-llm" and "SLA" in outcome["excluded"]["big-llm"]


def test_little_data_favours_the_fast_learner():
    outcome = recommend(with_answers(typed(results()), {"labeled_examples": 50}))
    assert outcome["choice"] == "small-llm"
    evidence = {e["candidate"]: e for e in outcome["evidence"]}
    assert evidence["big-llm"]["quality"] == 0.60 and "measured at 50" in evidence["big-llm"]["quality_note"]
    middle = recommend(with_answers(typed(results()), {"labeled_examples": 125}))
    mid = {e["candidate"]: e for e in middle["evidence"]}["big-llm"]
    assert abs(mid["quality"] - (0.60 + 0.5 * 0.33)) < 1e-9 and "interpolated" in mid["quality_note"]


def test_a_candidate_trained_only_on_more_data_than_the_team_has_is_not_chosen_on_that_number():
    """The demo's QLoRA row runs at 100 examples only: read at its smallest size it "won" the what-if for 32
    examples over candidates measured at 32. It steps aside where others were measured at that size."""
    data = results()
    data["trials"] = [t for t in data["trials"] if not (t["candidate"] == "big-llm" and t["train_size"] == 50)]
    data["run"]["analysis"]["learning_curves"]["big-llm"]["curve"] = [
        point for point in data["run"]["analysis"]["learning_curves"]["big-llm"]["curve"] if point["train_size"] == 200
    ]
    run = typed(data)
    assert recommend(run)["choice"] == "big-llm"  # at 200 examples, where everyone was measured
    outcome = recommend(with_answers(run, {"labeled_examples": 50}))
    assert outcome["choice"] == "small-llm"
    reason = outcome["excluded"]["big-llm"]
    assert "trained only on 200 or more labeled examples; with 50 its quality is not measured" in reason
    assert not any(s.endswith(": big-llm") for s in recommend(run)["sensitivity"])
    # Measured nowhere at the team's size: everyone is read at their smallest size, flagged, as before.
    fewer = recommend(with_answers(run, {"labeled_examples": 20}))
    assert fewer["choice"] is not None and "big-llm" not in fewer["excluded"]


def test_a_high_out_of_scope_share_favours_the_model_that_abstains():
    assert recommend(typed(results()))["choice"] == "big-llm"
    outcome = recommend(with_answers(typed(results()), {"out_of_scope_share": 0.3}))
    assert outcome["choice"] == "small-llm"
    assert any(
        s.startswith("if 30% of traffic is out of scope: small-llm") for s in recommend(typed(results()))["sensitivity"]
    )


def test_quality_floor_can_exclude_everyone():
    outcome = recommend(with_answers(typed(results()), {"min_macro_f1": 0.99}))
    assert outcome["choice"] is None and "No candidate meets every constraint" in outcome["rationale"]
    assert "below the floor 99%" in outcome["excluded"]["tfidf"]


def test_no_llm_needed_when_a_baseline_is_within_noise():
    data = results()
    for trial in data["trials"]:
        if trial["candidate"] == "tfidf" and trial["train_size"] == 200:
            trial["result"]["metrics"]["test"].update(macro_f1=0.92, macro_f1_ci=[0.89, 0.95])
    data["run"]["analysis"]["learning_curves"]["tfidf"]["curve"][1].update(macro_f1=0.92, ci=[0.89, 0.95])
    outcome = recommend(typed(data))
    assert outcome["choice"] == "tfidf" and outcome["no_llm_needed"]
    assert "no LLM needed" in outcome["rationale"]
    # A CPU baseline's cost per 1k items is a small number: written with its digits, not as 0.0000.
    per_1k = next(e["usd_per_1k_items"] for e in outcome["evidence"] if e["candidate"] == "tfidf")
    assert 0 < per_1k < 0.001
    assert re.search(r"\(\$0\.0*[1-9][0-9]? per 1k items", outcome["rationale"]), outcome["rationale"]


def test_ties_are_broken_by_cost():
    data = results()
    data["run"]["analysis"]["learning_curves"]["small-llm"]["curve"][1].update(macro_f1=0.92, ci=[0.88, 0.95])
    data["run"]["analysis"]["paired_comparisons"][0]["tie"] = True  # the paired bootstrap agrees: within noise
    outcome = recommend(typed(data))
    assert outcome["tie"] and outcome["choice"] == "small-llm" and "broken by cost" in outcome["reason"]


def test_results_written_before_the_decision_section_existed_still_decide():
    data = results()
    del data["run"]["spec"]["decision"], data["run"]["spec"]["efficiency"]
    data["run"]["analysis"]["gpu_estimates"] = []  # and no GPU estimates: LLMs cannot be costed, baselines can
    assert recommend(typed(data))["choice"] == "tfidf"


def test_the_paired_test_decides_ties_when_it_applies():
    data = results()
    data["run"]["analysis"]["learning_curves"]["small-llm"]["curve"][1].update(macro_f1=0.92, ci=[0.88, 0.95])
    data["run"]["analysis"]["paired_comparisons"] = []
    assert recommend(typed(data))["tie"]  # intervals overlap and there is no paired test
    data["run"]["analysis"]["paired_comparisons"] = results()["run"]["analysis"]["paired_comparisons"]
    assert not data["run"]["analysis"]["paired_comparisons"][0][
        "tie"
    ]  # the paired bootstrap at n=200: a real difference
    decided = recommend(typed(data))
    assert decided["tie"] is None and decided["reason"] == "highest weighted score"


def test_an_open_ended_task_changes_the_weights_and_warns_that_classification_is_a_proxy():
    narrow = recommend(typed(results()))
    assert narrow["choice"] == "big-llm" and "open-ended" not in narrow["rationale"]
    outcome = recommend(with_answers(typed(results()), {"task_specificity": "open-ended"}))
    # small-llm holds up better under perturbation and out of scope: weighted up, it now wins
    assert outcome["choice"] == "small-llm"
    assert outcome["weights"]["quality"] < narrow["weights"]["quality"]
    assert outcome["weights"]["robustness"] > narrow["weights"]["robustness"]
    assert "does not carry over to generation quality" in outcome["rationale"]


def test_an_llm_without_an_estimate_for_the_teams_gpu_is_named_not_dropped():
    data = results()
    data["run"]["analysis"]["gpu_estimates"] = [
        e for e in data["run"]["analysis"]["gpu_estimates"] if e["model"] != "big-llm"
    ]
    outcome = recommend(typed(data))
    assert outcome["choice"] == "small-llm"
    assert (
        "big-llm" in outcome["not_assessed"]
        and "no cost or latency estimate on `a10g`" in outcome["not_assessed"]["big-llm"]
    )
    assert "Not assessed: big-llm" in outcome["rationale"]


def test_a_zero_shot_candidate_pays_no_fine_tune_and_needs_only_its_weights_memory():
    """It is never fine-tuned: a fine-tune budget or a memory limit for fine-tuning must not exclude it."""
    data = results()
    zero = _zero_shot_trial("small-llm zero-shot", model="small-llm")
    data["trials"].append(zero)
    for estimate in data["run"]["analysis"]["gpu_estimates"]:
        estimate["fine_tune"]["memory_gb"]["weights"] = 2.0  # of the 6 GB small-llm needs to fine-tune
    outcome = recommend(with_answers(typed(data), {"max_fine_tune_usd": 1e-6, "memory_limit_gb": 3}))
    assert "small-llm zero-shot" not in outcome["excluded"], outcome["excluded"]
    assert "small-llm" in outcome["excluded"], "the fine-tuned one still pays for its fine-tune"
    tight = recommend(with_answers(typed(data), {"memory_limit_gb": 1.5}))
    assert tight["excluded"]["small-llm zero-shot"] == "its weights need 2 GB, limit 1.5 GB"


def test_a_tiny_budget_is_stated_with_its_digits():
    data = results()
    outcome = recommend(with_answers(typed(data), {"max_fine_tune_usd": 0.0001}))
    assert "exceeds the budget $0.0001" in outcome["excluded"]["small-llm"]


def test_candidates_the_run_never_reached_are_named_not_dropped():
    data = results()
    data["run"]["spec"]["candidates"] = [{"name": n} for n in ("big-llm", "small-llm", "tfidf", "late-llm")]
    outcome = recommend(typed(data))
    assert outcome["not_assessed"]["late-llm"] == "not run yet (the run stopped before it)"


def _zero_shot_trial(name: str, model: str) -> dict:
    from decision_fixture import _trial

    trial = _trial(name, "llm", 0, 0.5, [0.4, 0.6], 0.6, 0.45, method="zero-shot")
    trial["trial_id"] = f"{name}/n0/s0"
    trial["result"]["model_name"] = model
    trial["model_name"] = model
    return trial


def test_curves_stored_before_they_said_quality_read_as_today():
    """A run folder whose learning curves call every task's metric `macro_f1` (older versions) reads with the
    values under `quality`, so a report or what-if on it decides the same."""
    from bakeoff.results import RunMeta

    old = {
        "learning_curves": {
            "x": {"curve": [{"train_size": 10, "macro_f1": 0.7, "ci": [0.6, 0.8]}], "best_macro_f1": 0.7}
        }
    }
    curves = RunMeta(analysis=old).analysis["learning_curves"]["x"]
    assert curves["curve"] == [{"train_size": 10, "quality": 0.7, "ci": [0.6, 0.8]}] and curves["best_quality"] == 0.7
    assert old["learning_curves"]["x"]["curve"][0]["macro_f1"] == 0.7  # the caller's dict is left as it was
