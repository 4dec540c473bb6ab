"""Quality metrics on hand-computed cases."""

import numpy as np
import pytest

from bakeoff.evaluation.metrics import macro_f1, quality


def one_hot(pred, k):
    probs = np.full((len(pred), k), 0.1 / (k - 1))
    probs[np.arange(len(pred)), pred] = 0.9
    return probs


def test_accuracy_macro_f1_and_per_class_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    result = quality(y_true, one_hot(y_pred, 3), ["a", "b", "c"], n_resamples=200)
    assert result["accuracy"] == pytest.approx(4 / 6)
    # class a: P=2/3 R=2/3 F1=2/3; b: P=2/3 R=1 F1=0.8; c: P=0 R=0 F1=0
    assert result["per_class"]["a"]["f1"] == pytest.approx(2 / 3)
    assert result["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert result["per_class"]["c"]["f1"] == 0.0
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert result["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert result["mean_true_label_prob"] == pytest.approx((4 * 0.9 + 2 * 0.05) / 6)


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 4, 300))
    a = quality(y_true, one_hot(y_pred, 4), list("abcd"), n_resamples=500, seed=1)
    b = quality(y_true, one_hot(y_pred, 4), list("abcd"), n_resamples=500, seed=1)
    low, high = a["accuracy_ci"]
    assert low < a["accuracy"] < high and high - low < 0.15
    assert a["macro_f1_ci"][0] < a["macro_f1"] < a["macro_f1_ci"][1]
    assert a["accuracy_ci"] == b["accuracy_ci"]


def test_macro_f1_counts_labels_never_predicted_but_not_labels_that_never_occur():
    # label 1 has an item and no prediction: F1 0, counted; label 2 has neither: no F1, not counted
    assert macro_f1(np.array([0, 1]), np.array([0, 0]), 3) == pytest.approx((2 / 3 + 0) / 2)
    # a wrong prediction of an absent label counts it (F1 0), as sklearn does
    assert macro_f1(np.array([0, 0]), np.array([0, 2]), 3) == pytest.approx((2 / 3 + 0) / 2)


def test_a_test_set_without_a_rare_class_scores_perfect_predictions_as_perfect():
    """A label that has no test items (a rare class the split left out) must not count as F1 0: perfect
    predictions scored 75% with 4 labels, and the point value fell outside its own bootstrap interval."""
    y_true = np.repeat([0, 1, 2], 10)
    result = quality(y_true, one_hot(y_true, 4), list("abcd"), n_resamples=200)
    assert result["macro_f1"] == 1.0 and result["macro_f1_ci"] == [1.0, 1.0]
    y_pred = y_true.copy()
    y_pred[0] = 1
    result = quality(y_true, one_hot(y_pred, 4), list("abcd"), n_resamples=500)
    assert result["macro_f1_ci"][0] <= result["macro_f1"] <= result["macro_f1_ci"][1]


def test_batched_macro_f1_equals_sklearn_on_every_resample():
    from sklearn.metrics import f1_score

    from bakeoff.evaluation.metrics import macro_f1_batched

    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 5, (30, 40))
    y_pred = np.where(rng.random((30, 40)) < 0.6, y_true, rng.integers(0, 5, (30, 40)))
    y_true[:5] = np.minimum(y_true[:5], 2)  # some rows lack labels 3 and 4 in their true labels
    batched = macro_f1_batched(y_true, y_pred, 6)  # label 5 never occurs anywhere: not counted, as in sklearn
    assert batched.shape == (30,)
    for row in range(30):
        expected = f1_score(y_true[row], y_pred[row], average="macro", zero_division=0)
        assert batched[row] == pytest.approx(expected)
        assert macro_f1(y_true[row], y_pred[row], 6) == pytest.approx(expected)
