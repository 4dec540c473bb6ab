"""Beyond accuracy: perturbations, calibration, out-of-scope, paired tests and learning curves, by hand."""

import random

import numpy as np
import pytest

from bakeoff.config import EvaluationSpec, PerturbationSpec, TaskSpec
from bakeoff.data.task import prepare_task
from bakeoff.errors import ConfigError
from bakeoff.evaluation import perturb
from bakeoff.evaluation.appetite import appetite, examples_needed, fit, learning_curve
from bakeoff.evaluation.calibration import brier, ece, fit_temperature, nll, softmax_t
from bakeoff.evaluation.ood import choose_threshold, detection_metrics, ood_report
from bakeoff.evaluation.paired import compare, mcnemar
from bakeoff.evaluation.suite import run_suite

TEXT = "Hi, I was charged $49.99 twice for order 123456 on March 3. Maria cannot log in and I do not know why!"


@pytest.mark.parametrize("name", sorted(perturb.REGISTRY))
def test_perturbations_are_deterministic_per_seed_and_change_the_text(name):
    a = perturb.apply(name, {}, [TEXT, TEXT], seed=0)
    assert a == perturb.apply(name, {}, [TEXT, TEXT], seed=0)
    assert all(p != TEXT for p in a), f"{name} left the text unchanged"
    if name in ("typos", "drop_double", "padding", "entities", "whitespace", "synonyms", "punctuation"):
        # random perturbations: other seeds give other texts (synonyms has few words to swap here, so try several)
        assert len({perturb.apply(name, {}, [TEXT], seed=seed)[0] for seed in range(6)}) > 1


def test_specific_perturbations_do_what_they_say():
    rng = random.Random(0)
    assert perturb.contractions("I do not know", rng) == "I don't know"
    assert perturb.lowercase("ABC Def", rng) == "abc def"
    assert perturb.truncate("one two three four five", rng, keep=0.6) == "one two three"
    swapped = perturb.entity_swap(TEXT, random.Random(3))
    assert "Maria" not in swapped and "123456" not in swapped and "$49.99" not in swapped
    assert "charged" in swapped


def test_unknown_perturbation_and_bad_params_are_config_errors():
    with pytest.raises(ConfigError, match="did you mean `typos`"):
        perturb.apply("typo", {}, ["x"], 0)
    with pytest.raises(ConfigError, match="bad params"):
        perturb.apply("lowercase", {"rate": 3}, ["x"], 0)


def test_users_can_register_their_own():
    @perturb.register("shout_test")
    def shout(text, rng, marks=1):
        return text + "!" * int(marks)

    assert perturb.apply("shout_test", {"marks": 3}, ["hey"], 0) == ["hey!!!"]
    del perturb.REGISTRY["shout_test"]


def test_ece_brier_nll_by_hand():
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    # bins (15): 0.9 -> bin 13 (acc 1), 0.8 -> bin 11 (acc 0), 0.6 -> bin 8 (acc 1), 0.7 -> bin 10 (acc 1)
    assert ece(y, probs) == pytest.approx((0.1 + 0.8 + 0.4 + 0.3) / 4)
    assert brier(y, probs) == pytest.approx(((0.1**2 * 2) + (0.8**2 * 2) + (0.4**2 * 2) + (0.3**2 * 2)) / 4)
    assert nll(y, probs) == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.6, 0.7])))


def test_temperature_scaling_cools_an_overconfident_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    scores = rng.normal(0, 1, (400, 3))
    scores[np.arange(400), y] += 1.0
    hot = scores * 8  # same ranking, far too confident
    temperature = fit_temperature(y, hot)
    assert 4 < temperature < 16
    assert ece(y, softmax_t(hot, temperature)) < ece(y, softmax_t(hot, 1.0))


def test_auroc_fpr_and_threshold_on_a_tiny_ranking():
    inside, outside = np.array([0.9, 0.8, 0.7, 0.4]), np.array([0.5, 0.3])
    metrics = detection_metrics(inside, outside)
    # 8 in/out pairs, out ranks below in for 7 of them (0.5 beats 0.4): AUROC 7/8
    assert metrics["auroc"] == pytest.approx(7 / 8)
    assert metrics["fpr_at_95_tpr"] == pytest.approx(0.5)  # keeping all 4 in-scope admits the 0.5 outlier
    assert choose_threshold(inside, outside) == pytest.approx(0.7)


def test_ood_report_counts_confidently_wrong_and_abstentions():
    test_probs = np.array([[0.95, 0.05], [0.1, 0.9], [0.6, 0.4]])
    oos_probs = np.array([[0.92, 0.08], [0.5, 0.5]])
    report = ood_report(
        np.array([0, 1, 1]),
        test_probs,
        np.log(test_probs),
        oos_probs,
        np.log(oos_probs),
        np.array([[0.9, 0.1], [0.2, 0.8]]),
        np.array([[0.55, 0.45]]),
    )
    assert report["confidently_wrong_rate"] == 0.5
    threshold = report["threshold"]
    assert threshold["max_prob"] == pytest.approx(0.8)
    assert threshold["in_scope_abstention_rate"] == pytest.approx(1 / 3)
    assert threshold["out_of_scope_rejection_rate"] == pytest.approx(0.5)
    assert threshold["in_scope_accuracy_when_answering"] == 1.0
    assert report["risk_coverage"]["aurc"] == pytest.approx(np.mean([0, 0, 1 / 3]))


def test_mcnemar_on_a_2x2_table():
    # 10 items both right, A alone right on 8, B alone right on 1, both wrong on 1
    y = np.zeros(20, dtype=int)
    a = np.r_[np.zeros(10), np.zeros(8), np.ones(1), np.ones(1)].astype(int)
    b = np.r_[np.zeros(10), np.ones(8), np.zeros(1), np.ones(1)].astype(int)
    result = mcnemar(y, a, b)
    assert (result["only_a_correct"], result["only_b_correct"]) == (8, 1)
    assert result["p_value"] == pytest.approx(2 * sum(__import__("math").comb(9, k) for k in range(0, 2)) / 2**9)


def test_paired_bootstrap_declares_identical_models_a_tie():
    y = np.random.default_rng(0).integers(0, 3, 200)
    probs = np.eye(3)[y] * 0.8 + 0.2 / 3
    result = compare(y, probs, probs.copy(), n_resamples=200)
    assert result["tie"] and result["macro_f1"]["difference"] == 0


def test_power_curve_fit_and_examples_needed():
    sizes = [25, 50, 100, 200, 400]
    points = [(n, 0, 0.95 - 2.0 * n**-0.5, [0, 1]) for n in sizes]
    curve = learning_curve(points)
    fitted = fit(curve)
    assert fitted["a"] == pytest.approx(0.95, abs=1e-3) and fitted["c"] == pytest.approx(0.5, abs=1e-2)
    needed = examples_needed(curve, 0.95 - 2.0 * 150**-0.5, fitted)
    assert needed["how"].startswith("interpolated") and 140 <= needed["examples"] <= 160
    assert examples_needed(curve, 0.99, fitted)["examples"] is None, "a ceiling of 0.95 never reaches 0.99"
    beyond = examples_needed(curve, 0.95 - 2.0 * 600**-0.5, fitted)
    assert beyond["how"].startswith("extrapolated") and beyond["examples"] == pytest.approx(600, rel=0.05)
    report = appetite(points, share_of_best=0.9, target=0.5)
    assert report["to_target"]["examples"] == 25


def test_one_training_size_gives_no_examples_needed_for_a_share_of_its_own_best():
    one = appetite([(100, 0, 0.88, [0.8, 0.94])], share_of_best=0.9, target=0.5)
    assert one["to_share_of_best"] == {
        "share": 0.9,
        "examples": None,
        "how": "trained at one size only (100): no curve to read",
    }
    assert one["to_target"]["examples"] == 100, "an absolute target it reaches is still read off the one size"


def test_a_model_that_ignores_its_input_scores_chance_on_everything():
    task = prepare_task(TaskSpec(builtin="support-tickets", builtin_examples=400))
    k = len(task.labels)
    spec = EvaluationSpec(
        bootstrap_samples=100,
        max_perturbed_items=40,
        max_out_of_scope_items=40,
        perturbations=[PerturbationSpec(name="typos"), PerturbationSpec(name="paraphrase")],
    )

    def blind(texts):
        raw = np.tile(np.linspace(0, 0.1, k), (len(texts), 1))  # same answer whatever the text
        return softmax_t(raw, 1.0), raw

    metrics = run_suite(blind, task, spec, None, seed=0, builtin_task=True).metrics
    assert metrics["test"]["accuracy"] == pytest.approx(1 / k, abs=0.02)
    assert metrics["robustness"]["perturbations"]["typos"]["accuracy_drop"] == 0
    assert metrics["robustness"]["paraphrase"]["accuracy"] == pytest.approx(1 / k, abs=0.05)
    assert metrics["out_of_scope"]["by_score"]["max_prob"]["auroc"] == pytest.approx(0.5)
    assert not metrics["memorization"]["flag"]


def test_appetite_lines_read_as_sentences_for_a_curve_and_for_one_size():
    from bakeoff.report.summary import appetite_lines

    curves = {
        "curve": appetite([(32, 0, 0.5, [0, 1]), (100, 0, 0.9, [0, 1])], share_of_best=0.9, target=None),
        "one size": appetite([(100, 0, 0.88, [0, 1])], share_of_best=0.9, target=None),
    }
    lines = appetite_lines({"learning_curves": curves})
    assert lines == [
        "curve: macro-F1 by size 32: 50.0, 100: 90.0; 90% of its best needs 85 examples "
        "(interpolated linearly between measured sizes).",
        "one size: macro-F1 by size 100: 88.0; trained at one size only (100): no curve to read.",
    ]
    # a target the smallest size already reaches: one pair of brackets, not "(measured (smallest ...))"
    reached = {"flat": appetite([(32, 0, 0.9, [0, 1]), (100, 0, 0.92, [0, 1])], share_of_best=0.9, target=0.5)}
    (line,) = appetite_lines({"learning_curves": reached})
    assert "needs 32 (measured: the smallest size already reaches it)." in line and "((" not in line
