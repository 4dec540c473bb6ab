"""Extraction and generation metrics on hand-computed cases; item bootstrap and paired comparisons."""

import json

import numpy as np
import pytest
from sacrebleu.metrics import CHRF

from bakeoff.evaluation import item_bootstrap
from bakeoff.evaluation.extraction_metrics import (
    extraction_item_scores,
    extraction_quality,
    extraction_summary,
    normalise_value,
    parse_record,
)
from bakeoff.evaluation.generation_metrics import (
    generation_item_scores,
    generation_quality,
    is_refusal,
    out_of_scope_generation,
)
from bakeoff.evaluation.paired import compare_item_scores

FIELDS = ["order_id", "amount", "name"]
TEXTS = [
    'Order A-123 for $12.50, signed Bob "B" Smith',
    "Refund for order Z-9 please",
    "Where is order Q-7?",
    "Charged 40 EUR twice",
    "Order K-1 costs 5 USD",
    "Hello there",
]
TARGETS = [
    {"order_id": "A-123", "amount": "$12.50", "name": 'Bob "B" Smith'},
    {"order_id": "Z-9", "amount": None, "name": None},
    {"order_id": "Q-7", "amount": None},  # a missing field is null
    {"order_id": None, "amount": "40 EUR", "name": None},
    {"order_id": "K-1", "amount": "5 USD", "name": None},
    {"order_id": None, "amount": None, "name": None},
]
OUTPUTS = [
    json.dumps({"order_id": "a-123", "amount": "$12.50", "name": 'Bob "B" Smith'}),  # quotes escaped in JSON
    '{"order_id": "Z-9", "amount": null, "name": "Alice"}',  # Alice: invented, not in the text
    "order Q-7",  # not JSON
    "",  # empty
    ' {"order_id": "K-2", "amount": "5 usd.", "name": null} ',  # wrong id (not in text), amount right
    '{"order_id": null, "amount": null, "name": null, "x": 1}',  # an extra key: invalid
]


def test_normalise_and_parse():
    assert normalise_value("  Bob   SMITH. ") == "bob smith"
    assert normalise_value('"quoted"') == "quoted"
    assert normalise_value('O"Brien') == 'o"brien'
    assert normalise_value(12.5) == "12.5" and normalise_value(7) == "7"
    assert normalise_value("$12.50") != normalise_value("12.50")
    assert normalise_value("  ") is None and normalise_value(None) is None
    assert parse_record('{"a": "x", "b": null}', ["a", "b"]) == {"a": "x", "b": None}
    assert parse_record('{"a": "x"}', ["a", "b"]) is None  # missing key
    assert parse_record('{"a": "x", "a": "y", "b": null}', ["a", "b"]) is None  # duplicate key
    assert parse_record('["a", "b"]', ["a", "b"]) is None
    assert parse_record('{"a": "x", "b": null} trailing', ["a", "b"]) is None
    assert parse_record("", ["a", "b"]) is None


def test_extraction_counts_by_hand():
    result = extraction_quality(OUTPUTS, TARGETS, TEXTS, FIELDS, n_resamples=200)
    # order_id: TP items 0,1; FP item 4 (K-2); FN items 2 (invalid), 4 (wrong)
    # amount: TP items 0,4; FN item 3 (empty output).  name: TP item 0; FP item 1 (Alice).
    assert result["per_field"]["order_id"] | {} == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 4),
        "f1": pytest.approx(4 / 7),
        "tp": 2,
        "fp": 1,
        "fn": 2,
        "support": 4,
        "predicted": 3,
    }
    assert result["per_field"]["amount"]["f1"] == pytest.approx(4 / 5)
    assert result["per_field"]["name"]["f1"] == pytest.approx(2 / 3)
    assert result["field_precision"] == pytest.approx(5 / 7)
    assert result["field_recall"] == pytest.approx(5 / 8)
    assert result["field_f1"] == pytest.approx(10 / 15)
    assert result["field_f1_macro"] == pytest.approx((4 / 7 + 4 / 5 + 2 / 3) / 3)
    assert result["valid_output_rate"] == pytest.approx(3 / 6)
    assert result["record_exact_match"] == pytest.approx(1 / 6)
    # predicted non-null values: item 0 (3, all in text), item 1 (Z-9 in, Alice not), item 4 (k-2 not, 5 usd in)
    assert result["copied_values"] == 7
    assert result["hallucination_rate"] == pytest.approx(2 / 7)
    only_copied = extraction_quality(OUTPUTS, TARGETS, TEXTS, FIELDS, copy_fields=["order_id", "amount"])
    assert only_copied["hallucination_rate"] == pytest.approx(1 / 5)
    assert result["items"] == 6 and result["fields"] == FIELDS


def test_extraction_intervals_bracket_and_are_seeded():
    rng = np.random.default_rng(0)
    texts, targets, outputs = [], [], []
    for i in range(120):
        order = f"N-{i}"
        texts.append(f"Order {order} is late")
        targets.append({"order_id": order})
        outputs.append(json.dumps({"order_id": order if rng.random() < 0.7 else "N-x"}))
    a = extraction_quality(outputs, targets, texts, ["order_id"], n_resamples=300, seed=3)
    b = extraction_quality(outputs, targets, texts, ["order_id"], n_resamples=300, seed=3)
    for key in ("record_exact_match", "field_f1", "hallucination_rate"):
        low, high = a[f"{key}_ci"]
        assert low < a[key] < high and high - low < 0.3
        assert a[f"{key}_ci"] == b[f"{key}_ci"]
    assert a["valid_output_rate_ci"] == [1.0, 1.0]


def test_all_null_targets_and_predictions_score_one_and_empty_sets_score_zero():
    null = {"order_id": None}
    result = extraction_quality(['{"order_id": null}'] * 3, [null] * 3, ["hi"] * 3, ["order_id"], n_resamples=100)
    assert result["field_f1"] == result["field_precision"] == result["field_recall"] == 1.0
    assert result["record_exact_match"] == 1.0 and result["hallucination_rate"] is None
    empty = extraction_quality([], [], [], ["order_id"], n_resamples=100)
    assert empty["items"] == 0 and empty["record_exact_match"] == 0.0 and empty["field_f1_ci"] == [0.0, 0.0]


def test_subset_scores_match_a_direct_computation():
    scores = extraction_item_scores(OUTPUTS, TARGETS, TEXTS, FIELDS)
    keep = np.array([True, True, False, False, True, False])
    from_subset = extraction_summary(item_bootstrap.take(scores, keep), FIELDS, n_resamples=100)
    direct = extraction_quality(
        [o for o, k in zip(OUTPUTS, keep) if k],
        [t for t, k in zip(TARGETS, keep) if k],
        [t for t, k in zip(TEXTS, keep) if k],
        FIELDS,
        n_resamples=100,
    )
    assert from_subset == direct


def test_chrf_and_rouge_l_by_hand():
    # "ab" vs "ac": char 1-grams P = R = 1/2, 2-grams P = R = 0; orders 3-6 have no n-grams, so the effective
    # order is 2: mean P = mean R = 1/4, F_beta=2 = 5 * 1/16 / (4/4 + 1/4) = 0.25.
    result = generation_quality(["ab"], ["ac"], n_resamples=100)
    assert result["chrf"] == pytest.approx(0.25)
    # "the cat sat" vs "the cat": LCS 2, P = 2/3, R = 1, F = 0.8
    assert generation_quality(["the cat sat"], ["the cat"])["rouge_l"] == pytest.approx(0.8)
    # non-Latin words count (rouge-score's default tokenizer would score this 0)
    assert generation_quality(["Привет мир"], ["Привет мир"])["rouge_l"] == pytest.approx(1.0)
    assert generation_quality(["same words"], ["same words"])["chrf"] == pytest.approx(1.0)


def test_corpus_chrf_is_sacrebleus_and_differs_from_the_sentence_mean():
    outputs = ["your refund was issued today", "ok", "we shipped the parcel"]
    references = ["the refund was issued on monday", "okay, thanks", "the parcel left our warehouse"]
    result = generation_quality(outputs, references, n_resamples=200)
    chrf = CHRF()
    assert result["chrf"] == pytest.approx(chrf.corpus_score(outputs, [references]).score / 100)
    sentence = np.mean([chrf.sentence_score(o, [r]).score / 100 for o, r in zip(outputs, references)])
    assert result["chrf_sentence_mean"] == pytest.approx(sentence)
    assert result["chrf"] != pytest.approx(result["chrf_sentence_mean"])
    assert result["chrf_ci"][0] <= result["chrf"] <= result["chrf_ci"][1]


def test_lengths_refusals_and_empty_outputs():
    from tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    outputs = ["I'm sorry, but I can't help with that.", "Your refund is on its way", ""]
    result = generation_quality(outputs, ["a", "b", "c"], tokenizer=tokenizer, n_resamples=100)
    assert result["output_words_mean"] == pytest.approx((8 + 6 + 0) / 3)
    tokens = [len(tokenizer.encode(o, add_special_tokens=False)) for o in outputs]
    assert result["output_tokens_mean"] == pytest.approx(np.mean(tokens)) and tokens[2] == 0
    assert result["refusal_rate"] == pytest.approx(1 / 3) and result["empty_rate"] == pytest.approx(1 / 3)
    assert generation_quality(outputs, ["a", "b", "c"])["output_tokens_mean"] is None
    assert is_refusal("That is outside the scope of our support.")
    assert is_refusal("We are unable to process payments for that bank.")
    assert is_refusal("As an AI, I do not have opinions.")
    assert not is_refusal("Sorry for the delay, your refund is on its way.")
    assert not is_refusal("We can help: your order ships today.")
    assert is_refusal("Das geht nicht.", patterns=[r"geht nicht"])


def test_out_of_scope_generation_with_and_without_fallback_references():
    outputs = ["I can't help with that, sorry.", "Your parcel ships today.", "This is not something we can assist with"]
    detector = out_of_scope_generation(outputs, n_resamples=100)
    assert detector["scored_against"] == "fallback_detector" and "chrf" not in detector
    assert detector["fallback_detection_rate"] == pytest.approx(2 / 3)
    assert detector["items"] == 3
    fallback = ["I can't help with that, sorry."] * 3
    referenced = out_of_scope_generation(outputs, fallback_references=fallback, n_resamples=100)
    assert referenced["scored_against"] == "fallback_reference"
    assert referenced["fallback_detection_rate"] == pytest.approx(2 / 3)
    assert 0 < referenced["chrf"] < 1 and referenced["rouge_l"] > 0


def test_item_bootstrap_degenerate_cases_and_chunking(monkeypatch):
    def mean(s):
        return s["x"].mean(axis=-1)

    assert item_bootstrap.interval(mean, {"x": np.full(20, 0.4)}, 100, 0.95, 0) == [
        pytest.approx(0.4),
        pytest.approx(0.4),
    ]
    assert item_bootstrap.interval(mean, {"x": np.array([0.7])}, 100, 0.95, 0) == [0.7, 0.7]
    x = {"x": np.random.default_rng(1).random(50)}
    whole = item_bootstrap.interval(mean, x, 300, 0.9, 5)
    monkeypatch.setattr(item_bootstrap, "_CHUNK_ELEMENTS", 7)  # many small chunks, same resamples
    assert item_bootstrap.interval(mean, x, 300, 0.9, 5) == whole
    with pytest.raises(ValueError, match="different item counts"):
        item_bootstrap.interval(mean, {"x": np.zeros(3), "y": np.zeros(4)}, 100, 0.95, 0)


def test_paired_comparison_on_item_scores():
    targets = [{"order_id": f"N-{i}"} for i in range(40)]
    texts = [f"order N-{i}" for i in range(40)]
    right = [json.dumps(t) for t in targets]
    wrong = [json.dumps({"order_id": "N-x"}) if i % 2 else right[i] for i in range(40)]
    a = extraction_item_scores(right, targets, texts, ["order_id"])
    b = extraction_item_scores(wrong, targets, texts, ["order_id"])
    result = compare_item_scores("extraction", a, b, n_resamples=300)
    assert result["main_metric"] == "record_exact_match"
    assert result["record_exact_match"]["difference"] == pytest.approx(0.5)
    assert result["record_exact_match"]["ci"][0] > 0 and result["record_exact_match"]["p_b_at_least_a"] == 0.0
    assert not result["tie"]
    same = compare_item_scores("extraction", a, a, n_resamples=300)
    assert same["tie"] and same["field_f1"]["difference"] == 0.0 and "valid_output_rate" not in same
    asked = compare_item_scores("extraction", a, b, n_resamples=300, metrics=("valid_output_rate",))
    assert set(asked) == {"record_exact_match", "valid_output_rate", "main_metric", "tie"}
    assert asked["valid_output_rate"]["difference"] == 0.0  # both always valid JSON

    outs = ["the refund is issued", "parcel shipped", "hello"]
    refs = ["the refund was issued", "the parcel shipped", "hello there"]
    g = generation_item_scores(outs, refs)
    worse = generation_item_scores(["x", "y", "z"], refs)
    gen = compare_item_scores("generation", g, worse, n_resamples=200)
    assert gen["main_metric"] == "chrf" and gen["chrf"]["difference"] > 0 and gen["rouge_l"]["difference"] > 0
    with pytest.raises(ValueError, match="same items"):
        compare_item_scores("generation", g, item_bootstrap.take(worse, np.array([0, 1])))
    with pytest.raises(ValueError, match="classification"):
        compare_item_scores("classification", g, g)


def test_item_bootstrap_agrees_with_scipys_percentile_bootstrap_on_a_mean():
    from scipy.stats import bootstrap

    x = (np.random.default_rng(7).random(300) < 0.6).astype(float)
    ours = item_bootstrap.interval(lambda s: s["x"].mean(axis=-1), {"x": x}, 2000, 0.95, 0)
    theirs = bootstrap((x,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0))
    low, high = theirs.confidence_interval
    assert ours[0] == pytest.approx(low, abs=0.015) and ours[1] == pytest.approx(high, abs=0.015)
