"""Loading, validation, splits and the built-in task."""

import json
from collections import Counter

import pandas as pd
import pytest

from bakeoff.config import DataSpec, SplitSpec, TaskSpec
from bakeoff.data.examples import Examples
from bakeoff.data.load import keep_labels, load_examples
from bakeoff.data.splits import nested_subsets, stratified_split
from bakeoff.data.task import prepare_task
from bakeoff.data.ticket_templates import CATEGORIES
from bakeoff.data.tickets import generate_out_of_scope, generate_tickets
from bakeoff.data.validate import near_duplicate_mask
from bakeoff.errors import DataError

ROWS = [{"text": f"message number {i} about {lab}", "label": lab} for i in range(12) for lab in ("a", "b", "c")]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "hf-disk"])
def test_every_format_loads_the_same_examples(tmp_path, fmt):
    frame = pd.DataFrame(ROWS).rename(columns={"text": "body", "label": "intent"})
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")))
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        from datasets import Dataset

        Dataset.from_pandas(frame).save_to_disk(str(path))
    examples, _ = load_examples(path, DataSpec(path=path, text_column="body", label_column="intent"))
    assert examples.texts == [r["text"] for r in ROWS] and examples.labels == [r["label"] for r in ROWS]


def _csv(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("text,label\n", "no rows"),
        ("body,label\nhi,a\n", "no column 'text'"),
        ("text,label\nhi,a\nyo,\n", r"empty or missing label \(data rows \[2\]"),
        (b"text,label\n\xff\xfe bad,a\n", "not UTF-8"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, content, message):
    path = _csv(tmp_path, content)
    with pytest.raises(DataError, match=message):
        load_examples(path, DataSpec(path=path))


def _task(tmp_path, rows, **data):
    path = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return TaskSpec(data=DataSpec(path=path, **data))


def test_label_with_one_example_and_single_class_are_refused(tmp_path):
    with pytest.raises(DataError, match="fewer than 3 examples.*'lonely'"):
        prepare_task(_task(tmp_path, ROWS + [{"text": "x", "label": "lonely"}]))
    with pytest.raises(DataError, match="every example has the label 'a'"):
        prepare_task(_task(tmp_path, [r for r in ROWS if r["label"] == "a"]))


def test_whole_number_float_labels_are_the_integers_they_are(tmp_path):
    """An integer label column with one missing value arrives from pandas as floats (and one `1.0` in JSON
    makes the whole column float): `3.0` must stay label `3`, or a test file with `3` shares no labels."""
    rows = [{"text": f"t{i}", "label": i % 4} for i in range(12)]
    frame = pd.DataFrame(rows + [{"text": "unlabelled", "label": None}]).dropna()
    assert frame["label"].dtype == float
    parquet = tmp_path / "d.parquet"
    frame.to_parquet(parquet)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows[:-1] + [{"text": "t11", "label": 3.0}]))
    for path in (parquet, jsonl):
        examples, _ = load_examples(path, DataSpec(path=path))
        assert examples.labels == [str(i % 4) for i in range(12)], path.name
    half = tmp_path / "half.jsonl"
    half.write_text(json.dumps({"text": "x", "label": 0.5}) + "\n" + json.dumps({"text": "y", "label": "1.0"}))
    assert load_examples(half, DataSpec(path=half))[0].labels == ["0.5", "1.0"], "only floats, only whole ones"


def test_jsonl_with_a_byte_order_mark_and_labels_spelled_nan_load(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8-sig")
    assert load_examples(path, DataSpec(path=path))[0].labels == [r["label"] for r in ROWS]
    csv = _csv(tmp_path, "text,label\nhi,NaN\nyo,None\n")  # written-out words are labels; only empty is missing
    assert load_examples(csv, DataSpec(path=csv))[0].labels == ["NaN", "None"]


def test_a_label_needs_one_example_per_split_drawn_from_it(tmp_path):
    pair = ROWS + [{"text": "x", "label": "pair"}, {"text": "y", "label": "pair"}]
    with pytest.raises(DataError, match=r"fewer than 3 examples \(one to train on and one for each split.*'pair'"):
        prepare_task(_task(tmp_path, pair))  # test and validation both drawn: 2 is one short
    test = tmp_path / "test.csv"
    pd.DataFrame(ROWS[:9]).to_csv(test, index=False)
    task = prepare_task(_task(tmp_path, pair, test_path=test))  # only validation drawn: 2 suffice
    assert "pair" in task.labels


def test_too_many_labels_for_a_split_names_the_setting_and_the_fraction_that_works():
    data = Examples([f"text {i}" for i in range(120)], [f"label{i // 3}" for i in range(120)])  # 40 labels x 3
    with pytest.raises(DataError, match=r"12 validation items \(0.1 of 120\) for 40 labels.*"
                       r"raise `task.split.validation_fraction` to at least 0.34"):  # fmt: skip
        stratified_split(data, 0.1, seed=0, what="validation")
    rest, held = stratified_split(data, 0.34, seed=0, what="validation")
    assert set(held.labels) == set(rest.labels) == set(data.labels)


def test_integer_labels_in_the_config_are_compared_as_text():
    spec = DataSpec(path="d.csv", labels=[0, 1, 2.0], out_of_scope_labels=[3])
    assert spec.labels == ["0", "1", "2"] and spec.out_of_scope_labels == ["3"]


def test_case_only_label_spellings_and_texts_with_two_labels_are_warned_about():
    from bakeoff.data.validate import report

    train = Examples(
        ["a b", "c d", "e f", "g h", "Same text", "same text "],
        ["Billing", "billing", "refund", "refund", "refund", "shipping"],
    )
    warnings = report(train, train, train, 0).warnings
    assert any("['Billing', 'billing'] differ only in letter case; they are 2 classes" in w for w in warnings)
    assert any("1 texts occur with more than one label" in w and "['refund', 'shipping']" in w for w in warnings)
    assert report(Examples(["x", "y"], ["a", "b"]), Examples([], []), Examples(["x"], ["a"]), 0).warnings == ()


def test_test_file_sharing_no_labels_is_refused(tmp_path):
    test = tmp_path / "test.csv"
    pd.DataFrame([{"text": "q", "label": "zzz"}] * 3).to_csv(test, index=False)
    with pytest.raises(
        DataError, match=r"shares no labels with the training data \(training: 'a', 'b', 'c'; test: 'zzz'\)"
    ):
        prepare_task(_task(tmp_path, ROWS, test_path=test))


def test_report_counts_empty_texts_and_duplicates(tmp_path):
    rows = ROWS + [{"text": "", "label": "a"}] + [{"text": "message number 0 about a", "label": "a"}]
    task = prepare_task(_task(tmp_path, rows))
    assert task.report.empty_texts_dropped == 1
    assert task.labels == ["a", "b", "c"]
    assert task.report.train_examples + task.report.validation_examples + task.report.test_examples == len(rows) - 1


def test_near_duplicates_are_found():
    mask = near_duplicate_mask(
        ["I was charged twice for my order 1234", "where is my parcel"],
        ["I was charged twice for my order 1235", "please cancel my plan"],
    )
    assert mask.tolist() == [True, False]


def test_splits_are_stratified_and_seeded():
    data = generate_tickets(400, seed=1)
    rest, held = stratified_split(data, 0.25, seed=5, what="test")
    again, _ = stratified_split(data, 0.25, seed=5, what="test")
    assert rest.texts == again.texts and len(held) == 100
    assert set(Counter(held.labels).values()) == {10}


def test_nested_subsets_are_contained_and_stratified():
    labels = [lab for lab in "abcdefghij" for _ in range(30)]
    subsets = nested_subsets(labels, [10, 50, 200], seed=3)
    assert set(subsets[10]) < set(subsets[50]) < set(subsets[200])
    assert len({labels[i] for i in subsets[10]}) == 10, "the smallest subset already covers every label"
    counts = Counter(labels[i] for i in subsets[50])
    assert max(counts.values()) - min(counts.values()) <= 2
    assert nested_subsets(labels, [50], seed=3)[50] == subsets[50]
    with pytest.raises(DataError, match="train_sizes"):
        nested_subsets(labels, [1000], seed=0)


def test_keep_labels_and_cap_per_label():
    data = Examples([r["text"] for r in ROWS], [r["label"] for r in ROWS])
    kept = keep_labels(data, ["a", "b"], max_per_label=5, seed=0)
    assert Counter(kept.labels) == {"a": 5, "b": 5}
    with pytest.raises(DataError, match="absent"):
        keep_labels(data, ["nope"], None, 0)


def test_builtin_tickets_are_deterministic_varied_and_not_trivial():
    a, b = generate_tickets(600, seed=0), generate_tickets(600, seed=0)
    assert a.texts == b.texts and a.texts != generate_tickets(600, seed=1).texts
    assert len(set(a.labels)) >= 8 and len(CATEGORIES) >= 8
    assert len(set(a.texts)) > 0.97 * len(a)
    assert any(t.islower() for t in a.texts) and any("$" in t or "€" in t or "£" in t for t in a.texts)
    seen = {p for c in CATEGORIES.values() for p in c["seen"]}
    held = {p for c in CATEGORIES.values() for p in c["held_out"]}
    assert not seen & held
    oos = generate_out_of_scope(50, seed=0)
    assert len(oos) == 50 and not set(oos) & set(a.texts)


def test_builtin_task_defeats_a_keyword_baseline():
    """The task must be hard: TF-IDF + logistic regression stays below 100% even with 1,200 examples."""
    from bakeoff.baselines.registry import BaselineSetup, lookup
    from bakeoff.evaluation.suite import label_ids_of

    task = prepare_task(TaskSpec(builtin="support-tickets", builtin_examples=1600, split=SplitSpec(test_fraction=0.25)))
    setup = BaselineSetup("classification", seed=0, labels=tuple(task.labels))
    model = lookup("tfidf-logreg").build(setup).fit(task.train_pool)
    accuracy = (model.predict_proba(task.test.texts).argmax(1) == label_ids_of(task.test, task.labels)).mean()
    assert 0.6 < accuracy < 0.99


def test_json_rows_naming_a_key_twice_are_refused_by_row(tmp_path):
    """pandas (like `json`) keeps the last value of a repeated key: a row `{"label": "a", "label": "b"}` was
    silently `b`. JSON Lines, a JSON array, and records nested in a row are all checked."""
    spec = DataSpec(path=tmp_path / "x")
    lines = [json.dumps(r) for r in ROWS]
    lines[4] = lines[4][:-1] + ', "label": "b"}'
    path = tmp_path / "twice.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"twice.jsonl: data row 5 names the key `label` twice"):
        load_examples(path, spec)
    path = tmp_path / "twice.json"
    path.write_text("[" + ",".join(lines) + "]")
    with pytest.raises(DataError, match=r"twice.json: data row 5 names the key `label` twice"):
        load_examples(path, spec)
    nested = [json.dumps(r | {"meta": {"k": [{"a": 1}]}}) for r in ROWS]
    nested[7] = nested[7].replace('{"a": 1}', '{"a": 1, "a": 2}')
    path = tmp_path / "nested.jsonl"
    path.write_text("\n".join(nested))
    with pytest.raises(DataError, match=r"data row 8 names the key `a` twice"):
        load_examples(path, spec)
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n{not json\n")  # pandas still names what is wrong
    with pytest.raises(DataError, match=r"nested.jsonl: cannot read as jsonl"):
        load_examples(path, spec)
