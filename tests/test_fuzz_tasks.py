"""Fuzz of extraction and generation tasks: generated configs and data files through `bakeoff validate`.

Whatever the settings and the rows (odd texts, missing, numeric or nested values, records that are not JSON
or use other keys, a test file, a Hub-style dataset folder), `validate` answers ok (exit 0) or one short
error (exit 2), never a traceback. The classification fuzz is in tests/test_bad_inputs.py.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from bad_inputs import write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_inputs import _assert_clean_exit, invoke

FUZZ = settings(
    max_examples=15,
    deadline=20_000,  # ms per example: a validate with data is well under a second; the CPU may be shared
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEXT = st.one_of(
    st.sampled_from(["refund order 1234 for $5", "", " ", "where is my parcel", "null", "{}", "a\nb"]),
    st.text(max_size=20),
)
VALUE = st.one_of(
    st.none(), st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.lists(st.integers(), max_size=2)
)
KEYS = st.sampled_from(["order_id", "amount", "OrderID", "", "a"])
RECORD = st.one_of(
    st.dictionaries(KEYS, VALUE, max_size=3),
    st.sampled_from(["", "not json", "[1, 2]", '{"order_id": "1", "order_id": "2"}', "null", '"x"']),
)


@st.composite
def rows(draw, n_min: int = 0) -> list[dict]:
    """Rows with every column a config may name; each column sometimes left out."""
    n = draw(st.integers(n_min, 16))
    base = [
        {
            "text": f"refund order {1000 + i} for ${i}.00 from Maria",
            "order": str(1000 + i),
            "amount": f"${i}.00",
            "record": {"order_id": str(1000 + i), "amount": f"${i}.00"},
            "reply": f"Hi Maria, order {1000 + i} is refunded.",
            "category": ("billing", "refund")[i % 2],
            "uid": str(i),
        }
        for i in range(n)
    ]
    odd = draw(
        st.lists(
            st.fixed_dictionaries(
                {"text": TEXT, "order": VALUE, "amount": VALUE, "record": RECORD, "reply": VALUE, "category": VALUE}
            ),
            max_size=6,
        )
    )
    drop = draw(st.sets(st.sampled_from(["order", "record", "reply", "category", "uid"]), max_size=2))
    return [{k: v for k, v in row.items() if k not in drop} for row in base + odd]


def write_rows(path: Path, data: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    else:  # CSV: records as JSON text, lists as their repr, as a spreadsheet export would hold them
        cells = [{k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()} for r in data]
        pd.DataFrame(cells).to_csv(path, index=False)
    return path


def mostly(usual, *odd):
    """`usual` about two times in three, else one of the odd values: most examples reach the data checks."""
    return st.one_of(st.just(usual), st.just(usual), st.sampled_from([usual, *odd]))


@st.composite
def tasks(draw) -> dict:
    """The type's own settings, usually coherent, sometimes wrong in one of the ways users get them wrong."""
    kind = draw(st.sampled_from(["extraction", "generation"]))
    task: dict = {"type": kind, "source": draw(st.sampled_from(["csv", "jsonl", "hub"]))}
    if kind == "extraction":
        task["fields"], task["target_column"] = draw(
            mostly(
                ({"order_id": "order", "amount": "amount"}, None),
                (["order_id", "amount"], "record"),
                (["order_id"], "record"),
                ({"x": "text"}, None),
                ([], "record"),
                (None, None),
                (["order_id"], "text"),
                (["OrderID"], "missing"),
            )
        )
        task["decoding"] = draw(mostly({}, {"strategy": "sample", "constrained": False}, {"temperature": 0.5}))
    else:
        task["reference_column"] = draw(mostly("reply", "text", "missing", None, "category"))
        task["fallback_reference"] = draw(mostly(None, "", "  ", "Sorry, I cannot help with that."))
        task["decoding"] = draw(
            mostly({}, {"strategy": "sample", "temperature": 0.5}, {"top_p": 0.9}, {"max_new_tokens": 100_000})
        )
    task["label_column"] = draw(mostly(None, "category", "nope", "uid"))
    task["id_column"] = draw(mostly(None, "uid", "category", "nope"))
    task["extra_data"] = draw(mostly({}, {"labels": ["billing"]}, {"max_per_label": 4}))
    task["held_out"] = draw(st.sampled_from([None, "test_path", "validation_path"]))
    return task


@FUZZ
@given(tasks(), rows(n_min=0), rows(n_min=0))
def test_fuzzed_extraction_and_generation_configs_never_raise_a_traceback(tmp_path, task, train, held_out):
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # one folder per example: `datasets` caches by folder
    suffix = ".jsonl" if task["source"] == "jsonl" else ".csv"
    data: dict = {}
    if task["source"] == "hub":  # a dataset repo folder, read through `datasets` as a Hub dataset is
        write_rows(tmp_path / "repo" / "train.csv", train)
        data["hub"] = str(tmp_path / "repo")
        if task["held_out"] is not None:
            write_rows(tmp_path / "repo" / "test.csv", held_out)
            data["test_split"] = "test"
    else:
        data["path"] = str(write_rows(tmp_path / f"train{suffix}", train))
        if task["held_out"] is not None:
            data[task["held_out"]] = str(write_rows(tmp_path / f"held_out{suffix}", held_out))
    for key in ("target_column", "reference_column", "label_column", "id_column"):
        if task.get(key) is not None:
            data[key] = task[key]
    data.update(task["extra_data"])
    spec = {"type": task["type"], "data": data, "decoding": task["decoding"]}
    for key in ("fields", "fallback_reference"):
        if task.get(key) is not None:
            spec[key] = task[key]
    config = {
        "name": "fuzz",
        "task": spec,
        "candidates": [{"name": "base", "model": "crf" if task["type"] == "extraction" else "tfidf-retrieval"}],
        "grid": {"train_sizes": [4]},
        "evaluation": {"bootstrap_samples": 100, "perturbations": []},
        "output": {"dir": str(tmp_path / "run")},
    }
    _assert_clean_exit(invoke(["validate", str(write_config(tmp_path, config))]))
