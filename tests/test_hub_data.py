"""`task.data.hub`: a labeled dataset through `datasets`, from a local dataset repo folder (no network)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bakeoff.config import DataSpec, TaskSpec
from bakeoff.data.task import prepare_task
from bakeoff.errors import DataError

LABELS = ["billing", "refund", "shipping"]


def rows(per_label: int, seed: int) -> list[dict]:
    return [
        {"utterance": f"message {seed}-{i} about my {label} problem number {i * 7 % 11}", "intent": label}
        for label in LABELS
        for i in range(per_label)
    ]


def task(**data) -> TaskSpec:
    return TaskSpec(data=DataSpec(text_column="utterance", label_column="intent", **data))


def test_a_local_dataset_repo_with_named_splits(tmp_path):
    repo = tmp_path / "tickets"
    repo.mkdir()
    pd.DataFrame(rows(20, 0)).to_csv(repo / "train.csv", index=False)
    pd.DataFrame(rows(5, 1)).to_csv(repo / "test.csv", index=False)
    prepared = prepare_task(task(hub=str(repo), test_split="test"))
    assert prepared.labels == LABELS
    assert len(prepared.test) == 15  # the test split as given, not drawn from train
    assert prepared.report.hub == {
        "hub": str(repo),
        "config": None,
        "splits": {"train": "train", "test": "test", "validation": None},
        "revision": None,
        "commit_sha": None,  # a local folder has no commit; a Hub dataset records the one read
    }


def test_class_label_columns_become_label_names(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"utterance": Value("string"), "intent": ClassLabel(names=LABELS)})
    records = rows(12, 0)
    data = Dataset.from_dict(
        {"utterance": [r["utterance"] for r in records], "intent": [LABELS.index(r["intent"]) for r in records]},
        features=features,
    )
    (tmp_path / "intents" / "data").mkdir(parents=True)
    data.to_parquet(tmp_path / "intents" / "data" / "train-00000-of-00001.parquet")
    prepared = prepare_task(task(hub=str(tmp_path / "intents")))
    assert prepared.labels == LABELS  # names, as the LLM is prompted with them, not 0, 1, 2


def test_same_column_checks_as_files_and_unknown_split(tmp_path):
    repo = tmp_path / "tickets"
    repo.mkdir()
    pd.DataFrame(rows(10, 0)).rename(columns={"intent": "category"}).to_csv(repo / "train.csv", index=False)
    with pytest.raises(DataError, match=r"tickets:train: no column 'intent'; columns are \['utterance', 'category'\]"):
        prepare_task(task(hub=str(repo)))
    with pytest.raises(DataError, match=r"has no split `test`; its splits are \['train'\]"):
        prepare_task(
            TaskSpec(data=DataSpec(hub=str(repo), text_column="utterance", label_column="category", test_split="test"))
        )


def test_hub_id_not_cached_offline_is_one_line():
    with pytest.raises(DataError) as refused:
        prepare_task(task(hub="nobody/no-such-dataset-xyz"))
    assert "\n" not in str(refused.value) and "nobody/no-such-dataset-xyz" in str(refused.value)


def test_path_and_hub_are_exclusive(tmp_path):
    with pytest.raises(ValueError, match="exactly one of `task.data.path`"):
        DataSpec(path=Path("x.csv"), hub="PolyAI/banking77")
    with pytest.raises(ValueError, match="`test_split` goes with `task.data.hub`"):
        DataSpec(path=Path("x.csv"), test_split="test")


def csv_bytes(records: list[dict]) -> bytes:
    return pd.DataFrame(records).to_csv(index=False).encode()


@pytest.mark.integration  # `datasets` reads HF_ENDPOINT at import: each load runs in a fresh process
def test_a_hub_dataset_is_downloaded_records_its_commit_and_is_read_offline_later(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from hub_standin import StandinHub, StandinRepo

    sha_main, sha_v1 = "c" * 40, "d" * 40
    main = {"train.csv": csv_bytes(rows(20, 0)), "test.csv": csv_bytes(rows(3, 1)), "README.md": b"# tickets\n"}
    v1 = main | {"train.csv": csv_bytes(rows(12, 0))}
    repo = StandinRepo({sha_main: main, sha_v1: v1}, {"main": sha_main, "v1": sha_v1})
    code = (
        "import json, sys; from bakeoff.config import DataSpec, TaskSpec; from bakeoff.data.task import prepare_task; "
        "data = DataSpec(hub='acme/tickets', test_split='test', text_column='utterance', label_column='intent', "
        "revision=sys.argv[1] or None); "
        "task = prepare_task(TaskSpec(data=data)); "
        "print(json.dumps({'pool': len(task.train_pool) + len(task.validation), 'hub': task.report.hub}))"
    )

    def load(revision: str, offline: bool) -> dict:
        env = os.environ | {
            "HF_ENDPOINT": standin.url,
            "HF_HUB_OFFLINE": "1" if offline else "0",
            "TRANSFORMERS_OFFLINE": "1" if offline else "0",
            "HF_HOME": str(tmp_path / "hf-home"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        }
        done = subprocess.run(
            [sys.executable, "-c", code, revision], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    with StandinHub({"datasets/acme/tickets": repo}) as standin:
        first = load("", offline=False)
        assert first["pool"] == 60 and first["hub"]["commit_sha"] == sha_main and first["hub"]["revision"] is None
        pinned = load("v1", offline=False)
        assert pinned["pool"] == 36 and pinned["hub"]["commit_sha"] == sha_v1 and pinned["hub"]["revision"] == "v1"
        standin.log.clear()
        again = load("", offline=True)
        assert again == first and not standin.log  # from the cache, not one request


def test_no_network_is_one_line_and_fast(monkeypatch):
    import time

    import huggingface_hub.constants
    from test_hub import closed_port

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(
        DataError, match=r"PolyAI/banking77`: cannot reach the Hugging Face Hub at http://127.0.0.1:\d+"
    ):
        prepare_task(task(hub="PolyAI/banking77"))
    assert time.monotonic() - started < 10  # one call, no retries (datasets alone retries for ~30 s)


def test_a_local_dataset_folder_is_relative_to_the_config_file(tmp_path, monkeypatch):
    import yaml

    from bakeoff.config import load_spec

    (tmp_path / "tickets").mkdir()
    config = {
        "name": "x",
        "task": {"data": {"hub": "tickets"}},
        "candidates": [{"name": "tfidf", "model": "tfidf-logreg"}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir("/")
    assert load_spec(tmp_path / "c.yaml", []).task.data.hub == str((tmp_path / "tickets").resolve())
    config["task"]["data"]["hub"] = "PolyAI/banking77"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert load_spec(tmp_path / "c.yaml", []).task.data.hub == "PolyAI/banking77"


def target_rows(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "utterance": f"refund order {1000 + i} for ${i}.00 please",
            "order": str(1000 + i),
            "record": f'{{"order_id": "{1000 + i}"}}',
            "reply": f"Hi, order {1000 + i} is refunded.",
            "intent": LABELS[i % 3],
        }
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("kind", ["extraction", "generation"])
def test_extraction_and_generation_read_hub_splits_as_classification_does(tmp_path, kind):
    """`task.data.hub` with extraction or generation read `task.data.path` (None) and ended in an
    AttributeError: a dataset repo folder and a `save_to_disk` folder now load, splits and commit recorded."""
    from datasets import Dataset

    repo = tmp_path / "tickets"
    repo.mkdir()
    pd.DataFrame(target_rows(30)).to_csv(repo / "train.csv", index=False)
    pd.DataFrame(target_rows(6, 100)).to_csv(repo / "test.csv", index=False)
    Dataset.from_list(target_rows(30)).save_to_disk(str(tmp_path / "saved"))
    by_kind = {
        "extraction": {"fields": {"order_id": "order"}},
        "generation": {"data": {"reference_column": "reply"}},
    }[kind]

    def spec(**data) -> TaskSpec:
        data = {"text_column": "utterance", "label_column": "intent", **by_kind.get("data", {}), **data}
        return TaskSpec(type=kind, data=DataSpec(**data), **{k: v for k, v in by_kind.items() if k != "data"})

    prepared = prepare_task(spec(hub=str(repo), test_split="test"))
    assert len(prepared.test) == 6 and prepared.test.targets[0] in (
        '{"order_id":"1100"}',
        "Hi, order 1100 is refunded.",
    )
    assert set(prepared.train_pool.labels) == set(LABELS)  # stratified by the label column
    assert prepared.report.hub["splits"] == {"train": "train", "test": "test", "validation": None}
    saved = prepare_task(spec(hub=str(tmp_path / "saved")))
    assert len(saved.train_pool) + len(saved.validation) + len(saved.test) == 30
    with pytest.raises(DataError, match=r"tickets:train: no column 'missing'"):
        prepare_task(spec(hub=str(repo), text_column="missing"))
    with pytest.raises(DataError) as refused:
        prepare_task(spec(hub="nobody/no-such-dataset-xyz"))
    assert "\n" not in str(refused.value) and "nobody/no-such-dataset-xyz" in str(refused.value)
    with pytest.raises(DataError, match=r"`task.data.hub: no//such id` is neither a local dataset folder nor a Hub"):
        prepare_task(spec(hub="no//such id"))
