"""`decision.costs`: deciding by money, on recorded results and synthetic per-item probabilities (milliseconds)."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from decision_fixture import COSTS, item_scores, results, typed, with_costs

from bakeoff.config import CostsSpec
from bakeoff.decision.costs import (
    choose_threshold,
    cost_matrix,
    cost_table,
    difference_interval,
    item_costs,
    mean_interval,
    read_item_scores,
)
from bakeoff.decision.engine import recommend, with_answers
from bakeoff.errors import ConfigError

LABELS = ["billing", "refund", "tech"]


def _costed():
    data = with_costs(results())
    return data, typed(data), item_scores(data)


def test_without_costs_the_decision_is_as_before_and_reads_no_items():
    plain = recommend(typed(results()))
    assert "costs" not in plain and plain["weights"] is not None
    assert plain == recommend(typed(results()), item_scores(results()))  # probabilities alone change nothing


def test_the_matrix_arithmetic_matches_a_hand_computed_case():
    costs = CostsSpec(error=5, review=3, matrix={"refund": {"billing": 20}, "tech": {"billing": 1}})
    matrix, notes = cost_matrix(costs, LABELS)
    assert matrix.tolist() == [[0, 5, 5], [20, 0, 5], [1, 5, 0]]  # rows: truth; unlisted pairs cost `error`
    # (truth, predicted, confidence): cost answered 0, 20, 1, 5, 0
    rows = [(0, 0, 0.9), (1, 0, 0.8), (2, 0, 0.6), (0, 2, 0.55), (1, 1, 0.95)]
    true = np.array([t for t, _, _ in rows])
    probs = np.full((5, 3), 0.0)
    for i, (_, predicted, confidence) in enumerate(rows):
        probs[i] = (1 - confidence) / 2
        probs[i, predicted] = confidence
    # By hand, $ per item at each threshold: 0 -> 26/5; .6 -> (20+1+3)/5; .8 -> (20+3+3)/5; .9 -> (3+3+3)/5;
    # .95 -> 12/5; above all -> 15/5. The cheapest is .9, at $1.80 per item.
    chosen = choose_threshold(probs, true, matrix, review=3)
    assert chosen.threshold == pytest.approx(0.9) and chosen.usd_per_item == pytest.approx(9 / 5)
    wrong, review, answered = item_costs(probs, true, matrix, 3, chosen.threshold)
    assert wrong.tolist() == [0, 0, 0, 0, 0] and review.tolist() == [0, 3, 3, 3, 0]
    assert answered.tolist() == [1, 0, 0, 0, 1]
    wrong, review, _ = item_costs(probs, true, matrix, 3, 0.0)
    assert wrong.tolist() == [0, 20, 1, 5, 0] and review.sum() == 0
    # Without a review cost there is no one to send items to: everything is answered.
    assert choose_threshold(probs, true, matrix, review=None).threshold == 0.0
    assert notes == [
        "decision.costs.matrix: 4 of 6 wrong-label pairs not given (billing->refund, billing->tech, refund->tech, "
        "tech->refund): they cost `error` ($5); a right answer costs $0 unless given"
    ]


def test_the_threshold_is_chosen_on_validation_only():
    """Poisoned test probabilities (every answer flipped, every confidence 1) leave each threshold where it was;
    only the test-measured cost moves."""
    data, run, items = _costed()
    poisoned = {}
    for trial_id, s in items.items():
        flipped = np.zeros_like(s.test_probs)
        flipped[np.arange(len(s.test_true)), 1 - s.test_true] = 1.0
        poisoned[trial_id] = replace(s, test_probs=flipped)
    spec = CostsSpec(**COSTS)
    clean, dirty = cost_table(run, items, spec, 50.0), cost_table(run, poisoned, spec, 50.0)
    assert {k: v.thresholds for k, v in clean.by_trials.items()} == {
        k: v.thresholds for k, v in dirty.by_trials.items()
    }
    assert any(t > 0 for v in clean.by_trials.values() for t in v.thresholds)  # the check is not vacuous
    before = {e["candidate"]: e["costs"] for e in recommend(run, items)["evidence"]}
    after = {e["candidate"]: e["costs"] for e in recommend(run, poisoned)["evidence"]}
    for name in before:
        assert before[name]["threshold"] == after[name]["threshold"]
        assert before[name]["usd_per_1k_items"] != after[name]["usd_per_1k_items"]


def test_the_better_calibrated_candidate_wins_on_money_with_its_numbers():
    """small-llm is 7 points less accurate than big-llm, but unsure exactly where it is wrong: a person takes
    those items for $1 instead of $10 lost, so it costs less per month despite the weighted score's pick."""
    assert recommend(typed(results()))["choice"] == "big-llm"
    data, run, items = _costed()
    outcome = recommend(run, items)
    assert outcome["choice"] == "small-llm" and outcome["weights"] is None
    assert [name for name, _ in outcome["ranking"]] == ["small-llm", "big-llm", "tfidf"]
    small = next(e["costs"] for e in outcome["evidence"] if e["candidate"] == "small-llm")
    assert small["usd_per_month_errors"] == 0  # every wrong answer sits below its threshold
    assert small["automation_rate"] == pytest.approx(0.86, abs=0.01)  # its 86% right answers are automated
    serving, fine_tune = small["usd_per_month_serving"], small["usd_per_month_fine_tune"]
    assert small["usd_per_month_total"] == pytest.approx(100_000 * 0.14 * 1.0 + serving + fine_tune, rel=0.03)
    assert fine_tune == pytest.approx(0.3 / 12)  # the fine-tune spread over 12 months
    comparison = outcome["costs"]["comparison"]
    assert comparison["cheaper"] == "small-llm" and comparison["paired"] and not comparison["within_noise"]
    assert comparison["ci"][0] > 0
    assert "86% automated" in outcome["rationale"] and "big-llm costs $" in outcome["rationale"]


def test_the_bootstrap_intervals_cover_the_truth_on_a_synthetic_case():
    """Items wrong with probability 0.1 at $10: the true cost is $1 per item. Over 200 simulated test sets the
    95% interval covers it about 95% of the time; the paired difference likewise (true difference $0.50)."""
    rng = np.random.default_rng(7)
    covered = covered_difference = 0
    for _ in range(200):
        hard = rng.random(300) < 0.1  # items both models find hard: a shared part the pairing cancels
        a = 10.0 * (hard | (rng.random(300) < 0.0))
        b = 10.0 * (hard | (rng.random(300) < 0.5 / 9))  # P(wrong) = 0.1 + 0.9 * 0.5/9 = 0.15
        low, high = mean_interval(a, 400, 0.95)
        covered += low <= 1.0 <= high
        low, high = difference_interval(a, b, 400, 0.95, paired=True)
        covered_difference += low <= 0.5 <= high
    assert 0.90 <= covered / 200 <= 0.99
    assert 0.90 <= covered_difference / 200 <= 0.99


def test_a_what_if_on_costs_re_ranks_from_the_stored_probabilities():
    data, run, items = _costed()
    assert recommend(run, items)["choice"] == "small-llm"
    pricier_review = recommend(with_answers(run, {"costs": {"review": 8}}), items)
    # $8 a review: answering small-llm's 14% wrong costs $1.40 per item, reviewing them $1.12; big-llm's 7% $0.70
    assert pricier_review["choice"] == "big-llm"
    assert pricier_review["answers"]["costs"]["error"] == 10  # the section's other keys are kept
    assert any(s.startswith("if review costs $10 per item: big-llm") for s in recommend(run, items)["sensitivity"])


def _write_run_folder(folder: Path, stored: dict, items: dict) -> Path:
    """The recorded results as a run folder (store and predictions.npz files), as `bakeoff run` leaves one."""
    from bakeoff.store import ResultStore

    store = ResultStore(folder / "results.sqlite")
    for key, value in stored["run"].items():
        store.set_meta(key, value)
    for trial in stored["trials"]:
        store.start(trial["trial_id"], trial["candidate"], trial["method"], trial["train_size"], trial["seed"])
        store.finish(trial["trial_id"], trial["result"])
        s = items[trial["trial_id"]]
        trial_dir = folder / "trials" / trial["trial_id"].replace("/", "__")
        trial_dir.mkdir(parents=True)
        np.savez(
            trial_dir / "predictions.npz",
            probs=s.test_probs,
            raw=np.log(s.test_probs + 1e-9),
            y_true=s.test_true,
            **({"val_probs": s.val_probs, "val_true": s.val_true} if s.val_probs is not None else {}),
        )
    store.close()
    return folder


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bakeoff.cli", *map(str, args)], capture_output=True, text=True)


def test_bakeoff_recommend_re_ranks_a_run_folder_on_a_cost_what_if_without_re_running(tmp_path):
    from run_fixture import folder_digest

    data = with_costs(results())
    folder = _write_run_folder(tmp_path / "run", data, item_scores(data))
    assert read_item_scores(folder, typed(data))["small-llm/n200/s0"].val_probs.shape == (300, 2)
    trials_before = folder_digest(folder / "trials")
    made = _cli("recommend", folder)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Recommendation: fine-tune small-llm.")
    asked = _cli("recommend", folder, "decision.costs.review=8")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith("Recommendation: fine-tune big-llm."), asked.stdout
    assert "what-if (costs=" in asked.stderr
    assert folder_digest(folder / "trials") == trials_before  # nothing re-run, nothing rewritten
    whatif = json.loads((folder / "whatif" / "results.json").read_text())["recommendation"]
    assert whatif["choice"] == "big-llm" and whatif["answers"]["costs"]["review"] == 8
    html = (folder / "whatif" / "report.html").read_text()
    assert "Cost per month, errors included" in html and "automated %" in html and "<svg" in html
    typo = _cli("recommend", folder, "decision.costs.reveiw=8")
    assert typo.returncode == 2 and "decision.costs.reveiw: unknown key; did you mean `review`?" in typo.stderr


def test_the_notebook_api_prices_a_cost_what_if(tmp_path):
    import bakeoff
    from bakeoff.api import Run

    data = with_costs(results())
    folder = _write_run_folder(tmp_path / "run", data, item_scores(data))
    run = Run(path=folder, results=typed(data))  # the recorded analysis (its GPU estimates), as `report` reads it
    assert bakeoff.recommend(run).choice == "small-llm"
    assert bakeoff.recommend(run, costs={"review": 8}).choice == "big-llm"


def test_costs_on_a_run_whose_trials_stored_no_validation_probabilities_is_one_clear_line():
    data, run, items = _costed()
    old = {k: replace(v, val_probs=None, val_true=None) for k, v in items.items()}
    with pytest.raises(ConfigError) as err:
        recommend(run, old)
    message = str(err.value)
    assert "\n" not in message and "stored no per-item validation probabilities" in message
    assert "big-llm/n50/s0" in message and "remove `decision.costs`" in message


def test_unknown_matrix_labels_say_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown label 'refnd'; did you mean 'refund'\?"):
        cost_matrix(CostsSpec(error=1, matrix={"refnd": {"billing": 2}}), LABELS)
    with pytest.raises(ConfigError, match="unknown label 'bill'"):
        cost_matrix(CostsSpec(error=1, matrix={"refund": {"bill": 2}}), LABELS)
    data, run, items = _costed()
    with pytest.raises(ConfigError, match="unknown label 'c'"):
        recommend(with_answers(run, {"costs": {"matrix": {"a": {"c": 1}}}}), items)


def test_negative_costs_are_refused_naming_the_key():
    from bakeoff.config import spec_from_dict

    config = {
        "name": "x",
        "task": {"builtin": "support-tickets"},
        "candidates": [{"name": "t", "model": "tfidf-logreg"}],
        "decision": {"costs": {"error": 1, "review": -2, "matrix": {"a": {"b": -1}}}},
    }
    with pytest.raises(ConfigError) as err:
        spec_from_dict(config)
    assert "decision.costs.review: Input should be greater than or equal to 0" in str(err.value)
    assert "decision.costs.matrix.a.b: Input should be greater than or equal to 0" in str(err.value)


def test_costs_on_an_extraction_run_are_refused_in_one_line():
    data, run, items = _costed()
    spec = dict(run.run.spec) | {"task": {"type": "extraction"}}
    with pytest.raises(ConfigError, match="applies to classification runs"):
        cost_table(run.with_spec(spec), items, CostsSpec(**COSTS), 50.0)


def test_the_summary_and_report_show_the_money():
    from bakeoff.report.html import render
    from bakeoff.report.summary import markdown

    data, run, items = _costed()
    outcome = recommend(run, items)
    text = markdown("fixture", run, outcome)
    assert "## Cost per month, errors included" in text and "| small-llm |" in text
    assert "paired bootstrap, same test items" in text
    html = render(run, outcome)
    assert 'id="costs"' in html and "Expected cost against the confidence threshold" in html
    assert "Cost per month" not in render(typed(results()), recommend(typed(results())))


def test_a_trial_stores_the_validation_probabilities_it_scored(tmp_path):
    """`_evaluate` keeps val_probs / val_true in predictions.npz: what `decision.costs` chooses thresholds on."""
    from types import SimpleNamespace

    from bakeoff.config import EvaluationSpec, TaskSpec
    from bakeoff.data.task import prepare_task
    from bakeoff.evaluation.calibration import softmax_t
    from bakeoff.evaluation.suite import label_ids_of
    from bakeoff.recipes.trial import _evaluate

    task = prepare_task(TaskSpec(builtin="support-tickets", builtin_examples=200))
    k = len(task.labels)
    seen = []

    def blind(texts):
        seen.append(list(texts))
        raw = np.tile(np.linspace(0, 0.1, k), (len(texts), 1))
        return softmax_t(raw, 1.0), raw

    spec = EvaluationSpec(bootstrap_samples=100, max_validation_items=12, max_perturbed_items=10, perturbations=[])
    ctx = SimpleNamespace(
        task=task,
        spec=SimpleNamespace(evaluation=spec, task=SimpleNamespace(builtin="x")),
        run_dir=tmp_path,
        on_phase=None,
    )
    output = _evaluate(ctx, SimpleNamespace(seed=0, trial_id="blind/n0/s0"), blind, None)
    assert output.val_probs.shape == (12, k) and output.val_true.shape == (12,)
    validation = next(batch for batch in seen if len(batch) == 12)
    index = [task.validation.texts.index(text) for text in validation]
    assert output.val_true.tolist() == label_ids_of(task.validation.subset(index), task.labels).tolist()
    with np.load(tmp_path / "trials" / "blind__n0__s0" / "predictions.npz") as stored:
        assert np.array_equal(stored["val_probs"], output.val_probs)
        assert np.array_equal(stored["val_true"], output.val_true)
