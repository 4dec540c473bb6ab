"""Bad inputs a new user would try, each with the one-line message bakeoff must answer.

Used by tests/test_bad_inputs.py (every case: exit 2, at most 3 lines, never a traceback, the expected
message) and by scripts/troubleshooting_table.py (README's troubleshooting table, from the real messages).
Each case builds its files under a temporary folder and returns the CLI arguments to run.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

LABELS = ("billing", "shipping", "refund")


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], list[str]]  # builds files under a temp folder, returns the CLI arguments
    message: str  # a regex the output must contain
    exit_code: int = 2
    fix: str = ""  # for the troubleshooting table: what the user does about it
    needs_run: bool = False  # gets a finished run folder at tmp/"run" first
    check: Callable[[Path], None] | None = field(default=None, compare=False)  # extra assertion after the command


def rows(per_label: int = 12, labels=LABELS) -> list[dict]:
    return [
        {"text": f"message {i} about my {label} issue number {i * 7 % 11}", "label": label}
        for label in labels
        for i in range(per_label)
    ]


def write_csv(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_csv(path, index=False)
    return path


def base_config(tmp: Path, data_path: Path | None = None) -> dict:
    data_path = data_path if data_path is not None else write_csv(tmp / "train.csv", rows())
    return {
        "name": "bad-input",
        "task": {"data": {"path": str(data_path)}},
        "candidates": [{"name": "tfidf", "model": "tfidf-logreg"}],
        "grid": {"train_sizes": [6]},
        "evaluation": {"bootstrap_samples": 100, "perturbations": [{"name": "typos"}]},
        "output": {"dir": str(tmp / "run")},
    }


def write_config(tmp: Path, config: dict, name: str = "config.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def validate_with(edit: Callable[[dict, Path], None]) -> Callable[[Path], list[str]]:
    """A case that edits the base config (and may write files), then runs `bakeoff validate`."""

    def make(tmp: Path) -> list[str]:
        config = base_config(tmp)
        edit(config, tmp)
        return ["validate", str(write_config(tmp, config))]

    return make


def validate_data(write: Callable[[Path], Path], **data_keys) -> Callable[[Path], list[str]]:
    """A case whose training file is written by `write`; extra `task.data` keys as given."""

    def make(tmp: Path) -> list[str]:
        config = base_config(tmp, write(tmp))
        config["task"]["data"].update(data_keys)
        return ["validate", str(write_config(tmp, config))]

    return make


def set_key(dotted: str, value) -> Callable[[dict, Path], None]:
    def edit(config: dict, tmp: Path) -> None:
        node = config
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[keys[-1]] = value

    return edit


def drop_key(dotted: str) -> Callable[[dict, Path], None]:
    def edit(config: dict, tmp: Path) -> None:
        node = config
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def with_override(*overrides: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        return ["validate", str(write_config(tmp, base_config(tmp))), *overrides]

    return make


def raw_config(text: bytes) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        path = tmp / "config.yaml"
        path.write_bytes(text)
        return ["validate", str(path)]

    return make


def llm_candidate(model: Callable[[Path], str], **keys) -> Callable[[dict, Path], None]:
    def edit(config: dict, tmp: Path) -> None:
        config["candidates"].append({"name": "llm", "model": model(tmp), **keys})

    return edit


def model_folder(tmp: Path, files: dict[str, bytes | dict]) -> str:
    folder = tmp / "model"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        data = json.dumps(content).encode() if isinstance(content, dict) else content
        (folder / name).write_bytes(data)
    return str(folder)


LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 16}


# ----- files of every kind gone wrong -----


def csv_text(text: str, name: str = "train.csv") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def csv_bytes(data: bytes, name: str = "train.csv") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return write


def records(transform: Callable[[list[dict]], list[dict]], name: str = "train.csv") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        data = transform(rows())
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".parquet"):
            pd.DataFrame(data).to_parquet(path)
        elif name.endswith((".jsonl",)):
            path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
        else:
            pd.DataFrame(data).to_csv(path, index=False)
        return path

    return write


def parquet_file(name: str) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        pd.DataFrame(rows()).to_parquet(path)
        return path

    return write


def gzip_csv(tmp: Path) -> Path:
    path = tmp / "train.csv"
    path.write_bytes(gzip.compress(pd.DataFrame(rows()).to_csv(index=False).encode()))
    return path


def side_file(key: str, records_: Callable[[], list[dict]], name: str) -> Callable[[dict, Path], None]:
    """Sets task.data.<key> to a CSV of the given rows."""

    def edit(config: dict, tmp: Path) -> None:
        config["task"]["data"][key] = str(write_csv(tmp / name, records_()))

    return edit


def relabel(mapping: dict[str, str], only_first: int | None = None) -> Callable[[list[dict]], list[dict]]:
    def transform(data: list[dict]) -> list[dict]:
        out, changed = [], 0
        for r in data:
            if r["label"] in mapping and (only_first is None or changed < only_first):
                r = r | {"label": mapping[r["label"]]}
                changed += 1
            out.append(r)
        return out

    return transform


# ----- run folders gone wrong (need a finished run at tmp/"run") -----


def on_run(*args: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        return [a.replace("RUN", str(tmp / "run")) for a in args]

    return make


def damage_store(tmp: Path) -> list[str]:
    (tmp / "run" / "results.sqlite").write_bytes(b"this is not a database" * 100)
    for extra in ("results.sqlite-wal", "results.sqlite-shm"):
        (tmp / "run" / extra).unlink(missing_ok=True)
    return ["report", str(tmp / "run")]


def empty_store(tmp: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(tmp / "run" / "results.sqlite") as db:
        db.execute("DELETE FROM trials")
    return ["report", str(tmp / "run")]


def stuck_running(tmp: Path) -> list[str]:
    """The run's only trial left `running` (its driver was killed), then `bakeoff report`."""
    import sqlite3

    with sqlite3.connect(tmp / "run" / "results.sqlite") as db:
        db.execute("UPDATE trials SET status = 'running', result = NULL, finished_at = NULL")
    return ["report", str(tmp / "run")]


def rerun_damaged(tmp: Path) -> list[str]:
    damage_store(tmp)
    return ["run", str(write_config(tmp, base_config(tmp)))]


def old_layout_store(tmp: Path) -> list[str]:
    """A store whose trials table lacks a column this version reads (made by an older bakeoff)."""
    import sqlite3

    with sqlite3.connect(tmp / "run" / "results.sqlite") as db:
        db.execute("ALTER TABLE trials DROP COLUMN attempts")
    return ["report", str(tmp / "run")]


def truncated_result(tmp: Path) -> list[str]:
    """One trial's stored JSON cut short (a damaged row, not a damaged file)."""
    import sqlite3

    with sqlite3.connect(tmp / "run" / "results.sqlite") as db:
        db.execute("UPDATE trials SET result = '{not json' WHERE rowid = (SELECT min(rowid) FROM trials)")
    return ["recommend", str(tmp / "run")]


def outputs_untouched(tmp: Path) -> None:
    """The run's outputs are byte-for-byte what the finished run wrote (saved by the test as *.orig)."""
    for name in ("results.json", "summary.md", "report.html"):
        assert (tmp / "run" / name).read_bytes() == (tmp / f"{name}.orig").read_bytes(), f"{name} was changed"


def no_trial_ran(tmp: Path) -> None:
    assert not (tmp / "run" / "results.sqlite").exists(), "a refused run must not start trials"


def run_refused(edit: Callable[[dict, Path], None]) -> Callable[[Path], list[str]]:
    """Like validate_with, but `bakeoff run`: the same refusal must come before any trial."""

    def make(tmp: Path) -> list[str]:
        config = base_config(tmp)
        edit(config, tmp)
        return ["run", str(write_config(tmp, config))]

    return make


def output_is_a_file(config: dict, tmp: Path) -> None:
    (tmp / "afile").write_text("x")
    config["output"]["dir"] = str(tmp / "afile")


USERS_OWN = {"summary.md": "# my notes\n", "results.json": '{"mine": true}\n', "report.html": "<p>mine</p>\n"}


def output_holds_users_files(config: dict, tmp: Path) -> None:
    """output.dir is a folder of the user's own files named like a run's outputs (no results.sqlite)."""
    folder = tmp / "mine"
    folder.mkdir()
    for name, text in USERS_OWN.items():
        (folder / name).write_text(text)
    config["output"]["dir"] = str(folder)


def users_files_untouched(tmp: Path) -> None:
    for name, text in USERS_OWN.items():
        assert (tmp / "mine" / name).read_text() == text, f"{name} was overwritten"
    assert not (tmp / "mine" / "results.sqlite").exists(), "a refused run must not start trials"


CASES: list[Case] = [
    # --- the config file itself ---
    Case(
        "config missing",
        lambda tmp: ["validate", str(tmp / "nope.yaml")],
        r"config file not "
        r"found",
        fix="check the path",
    ),
    Case(
        "config is a folder",
        lambda tmp: ["validate", str(tmp)],
        r"is a folder; give the YAML config "
        r"file",
        fix="pass the YAML file, not its folder",
    ),
    Case("config empty", raw_config(b""), r"expected a mapping of settings", fix="write the settings (see configs/)"),
    Case("config is a list", raw_config(b"- a\n- b\n"), r"expected a mapping of settings at the top level, got list"),
    Case(
        "config malformed YAML",
        raw_config(b"name: x\n  bad: [1,\n"),
        r"malformed YAML",
        fix="fix the YAML at the line given",
    ),
    Case("config not UTF-8", raw_config(b"name: \xff\xfe\n"), r"not UTF-8", fix="re-save as UTF-8"),
    Case("config scalar", raw_config(b"42\n"), r"expected a mapping"),
    Case(
        "unknown top-level key",
        validate_with(set_key("candidate", [])),
        r"candidate: unknown key; did you mean "
        r"`candidates`",
        fix="fix the key's spelling",
    ),
    Case(
        "unknown nested key",
        validate_with(set_key("training.epoch", 2)),
        r"training.epoch: unknown key; did you mean `epochs`",
    ),
    Case("wrong type", validate_with(set_key("training.epochs", "many")), r"training.epochs: .*integer"),
    Case(
        "negative epochs",
        validate_with(set_key("training.epochs", -1)),
        r"training.epochs: .*greater than or equal "
        r"to 1",
    ),
    Case("missing name", validate_with(drop_key("name")), r"name: Field required"),
    Case("missing candidates", validate_with(drop_key("candidates")), r"candidates: Field required"),
    Case("empty candidates", validate_with(set_key("candidates", [])), r"candidates: .*at least 1"),
    Case(
        "builtin and data", validate_with(set_key("task.builtin", "support-tickets")), r"exactly one of `task.builtin`"
    ),
    Case("neither builtin nor data", validate_with(drop_key("task.data")), r"exactly one of `task.builtin`"),
    Case("unknown builtin", validate_with(set_key("task.builtin", "tickets")), r"task.builtin: .*support-tickets"),
    Case(
        "run name with ../",
        validate_with(set_key("name", "../outside")),
        r"name: '../outside': use letters, digits",
        fix="use a plain name (it names the folder runs/<name>)",
    ),
    Case("run name with slash", validate_with(set_key("name", "a/b")), r"name: 'a/b': use letters"),
    Case("run name hidden", validate_with(set_key("name", ".hidden")), r"name: '.hidden': use letters"),
    Case(
        "candidate name with slash",
        validate_with(set_key("candidates.0.name", "x/y")),
        r"candidates.0.name: 'x/y': use letters",
    ),
    Case(
        "duplicate candidate names",
        validate_with(lambda c, t: c["candidates"].append(dict(c["candidates"][0]))),
        r"candidate names must "
        r"be unique",
    ),
    Case(
        "baseline with lora",
        validate_with(set_key("candidates.0.method", "lora")),
        r"classical baseline: its method is `fit`",
    ),
    Case(
        "LLM with fit",
        validate_with(llm_candidate(lambda t: "smollm2-135m", method="fit")),
        r"`fit` is for the "
        r"classical baselines",
    ),
    Case(
        "unknown method",
        validate_with(set_key("candidates.0.method", "dora")),
        r"candidates.0.method: Input should "
        r"be",
    ),
    Case(
        "learning rate on a baseline",
        validate_with(set_key("candidates.0.learning_rate", 1e-3)),
        r"`learning_rate` applies to lora, qlora and full fine-tuning, not to `fit`",
        fix="remove it, or set it on a fine-tuned candidate",
    ),
    Case("train size 1", validate_with(set_key("grid.train_sizes", [1])), r"at least 2"),
    Case(
        "duplicate train sizes", validate_with(set_key("grid.train_sizes", [6, 6])), r"training sizes must be distinct"
    ),
    Case("no seeds", validate_with(set_key("grid.seeds", [])), r"grid.seeds: .*at least 1"),
    Case(
        "train size larger than pool",
        validate_with(set_key("grid.train_sizes", [500])),
        r"asks for 500 training examples but the training "
        r"pool has",
        fix="use sizes up to the pool size it names",
    ),
    Case(
        "text column = label column",
        validate_with(set_key("task.data.text_column", "label")),
        r"text_column and label_column are both "
        r"`label`",
        fix="set `label_column` to the class column",
    ),
    Case(
        "label both kept and out of scope",
        validate_with(
            lambda c, t: c["task"]["data"].update(labels=["billing", "shipping"], out_of_scope_labels=["billing"])
        ),
        r"in both `labels` .* and `out_of_scope_labels`",
    ),
    Case(
        "unknown GPU",
        validate_with(set_key("efficiency.gpus", ["a10g", "h1000"])),
        r"unknown GPU `h1000`; did you "
        r"mean `h100`",
        fix="use a catalog key (`bakeoff estimate --help` lists them)",
    ),
    Case(
        "decision GPU not estimated",
        validate_with(lambda c, t: c.update(efficiency={"gpus": ["l4"]})),
        r"decision.gpu `a10g` must be one of efficiency.gpus",
    ),
    Case(
        "price for unknown GPU",
        validate_with(set_key("efficiency.usd_per_hour", {"a10": 1.0})),
        r"unknown GPU "
        r"`a10`",
        fix="use a catalog key",
    ),
    Case(
        "price for GPU not estimated",
        validate_with(lambda c, t: c.update(efficiency={"gpus": ["a10g"], "usd_per_hour": {"h100": 2.0}})),
        r"usd_per_hour sets a price for `h100`, which is not in "
        r"efficiency.gpus",
        fix="add the GPU to `efficiency.gpus`",
    ),
    Case(
        "unknown perturbation",
        validate_with(set_key("evaluation.perturbations", [{"name": "typo"}])),
        r"unknown perturbation `typo`",
        fix="use a registered name (the message lists them)",
    ),
    Case(
        "bad perturbation parameter",
        validate_with(set_key("evaluation.perturbations", [{"name": "typos", "params": {"speed": 2}}])),
        r"perturbations `typos`: bad params \{.speed.: 2\}",
    ),
    Case(
        "paraphrase on own data",
        validate_with(set_key("evaluation.perturbations", [{"name": "paraphrase"}])),
        r"`paraphrase` needs "
        r"held-out phrasings",
    ),
    Case(
        "missing plugin module",
        validate_with(set_key("evaluation.plugins", ["no_such_plugin_module"])),
        r"no_such_plugin_module",
    ),
    Case(
        "confidence out of range",
        validate_with(set_key("evaluation.confidence", 1.5)),
        r"evaluation.confidence: .*less than 1",
    ),
    Case("LoRA rank 0", validate_with(set_key("training.lora.r", 0)), r"training.lora.r: .*greater than or equal to 1"),
    Case(
        "unknown prompt style",
        validate_with(set_key("task.prompt_style", "fancy")),
        r"task.prompt_style: Input should be",
    ),
    Case(
        "test fraction 1",
        validate_with(set_key("task.split.test_fraction", 1.0)),
        r"task.split.test_fraction: .*less than 1",
    ),
    Case(
        "max_per_label 1",
        validate_with(set_key("task.data.max_per_label", 1)),
        r"max_per_label: .*greater than or equal to 2",
    ),
    Case(
        "scoring batch not a number", validate_with(set_key("evaluation.batch_size", "big")), r"evaluation.batch_size"
    ),
    Case(
        "unknown scoring mode",
        validate_with(set_key("evaluation.scoring", "fast")),
        r"evaluation.scoring: Input should be",
    ),
    Case(
        "output dir is a file",
        validate_with(output_is_a_file),
        r"the run folder .* is a file",
        fix="set `output.dir` to a folder",
    ),
    Case(
        "output dir holds the user's files",
        validate_with(output_holds_users_files),
        r"the run folder .*mine holds files bakeoff did not write \(report.html, results.json, summary.md\)",
        fix="point `output.dir` at a new or empty folder, or at a bakeoff run folder",
    ),
    Case(
        "run: output dir holds the user's files",
        run_refused(output_holds_users_files),
        r"the run folder .*mine holds files bakeoff did not write",
        check=users_files_untouched,
    ),
    Case(
        "unknown cluster GPU",
        validate_with(lambda config, tmp: config.update(runner={"kind": "ray", "gpu": "h1000"})),
        r"runner.gpu: unknown GPU `h1000`; did you mean `h100`\?",
        fix="use a catalog key, or leave `runner.gpu` out to read it from the nodes",
    ),
    Case(
        "this CPU as the cluster GPU",
        validate_with(lambda config, tmp: config.update(runner={"kind": "ray", "gpu": "local-cpu"})),
        r"runner.gpu `local-cpu` is this machine's CPU, not a GPU of the cluster",
        fix="name the cluster's GPU, or leave `runner.gpu` out",
    ),
    Case(
        "Ray address on the local runner",
        validate_with(set_key("runner.address", "auto")),
        r"runner.address is a setting of the Ray runner, and runner.kind is `local`",
        fix="set `runner.kind: ray` (or `--runner ray`), or remove `runner.address`",
    ),
    Case(
        "run: --ray-address with --runner local",
        lambda tmp: ["run", str(write_config(tmp, base_config(tmp))), "--runner", "local", "--ray-address", "h:6379"],
        r"--ray-address joins a Ray cluster, and --runner is `local`: use `--runner ray`",
        fix="use `--runner ray` with `--ray-address`",
    ),
    Case(
        "run: Ray cluster unreachable",
        lambda tmp: ["run", str(write_config(tmp, base_config(tmp))), "--ray-address", "127.0.0.1:1"],
        r"cannot reach the Ray cluster at `127.0.0.1:1` \(Connection refused within 30 s, "
        r"`runner.connect_timeout_s`\)",
        check=no_trial_ran,
        fix="start the cluster (`ray start --head`) or fix the address",
    ),
    Case(
        "cost matrix label typo",
        validate_with(set_key("decision.costs", {"error": 4.0, "matrix": {"refnd": {"billing": 9.0}}})),
        r"decision.costs.matrix: unknown label 'refnd'; did you mean 'refund'\?",
        fix="use the task's label names in `decision.costs.matrix`",
    ),
    Case(
        "negative cost",
        validate_with(set_key("decision.costs", {"error": -1.0})),
        r"decision.costs.error: Input should be greater than or equal to 0",
        fix="costs are $ amounts of at least 0",
    ),
    Case(
        "decision bad share",
        validate_with(set_key("decision.out_of_scope_share", 2)),
        r"decision.out_of_scope_share: .*less than "
        r"or equal to 1",
    ),
    # --- data files ---
    Case(
        "data file missing",
        validate_with(set_key("task.data.path", "/nonexistent/train.csv")),
        r"data file not "
        r"found: /nonexistent/train.csv",
        fix="check `task.data.path` (relative paths are relative to the config file)",
    ),
    Case(
        "data path is a folder",
        validate_with(lambda c, t: (t / "folder").mkdir() or c["task"]["data"].update(path=str(t / "folder"))),
        r"cannot read as hf-disk",
        fix="point `path` at a file, or a `save_to_disk` folder",
    ),
    Case(
        "unknown extension",
        validate_data(csv_text("text,label\n", name="train.txt")),
        r"cannot tell the format from "
        r"the extension",
        fix="set `task.data.format`",
    ),
    Case("empty data file", validate_data(csv_text("")), r"the file is empty"),
    Case("header only", validate_data(csv_text("text,label\n")), r"the file has no rows"),
    Case(
        "missing text column",
        validate_data(records(lambda d: [{"body": r["text"], "label": r["label"]} for r in d])),
        r"no column 'text'; columns are \['body', 'label'\]",
        fix="set `task.data.text_column`",
    ),
    Case(
        "missing label column",
        validate_data(records(lambda d: [{"text": r["text"], "intent": r["label"]} for r in d])),
        r"no column 'label'; columns are \['text', 'intent'\]",
        fix="set `task.data.label_column`",
    ),
    Case(
        "empty labels",
        validate_data(records(relabel({"billing": ""}, only_first=2))),
        r"2 rows have an empty or missing "
        r"label \(data rows \[",
        fix="fill or drop those rows",
    ),
    Case(
        "one label only",
        validate_data(records(lambda d: [r | {"label": "billing"} for r in d])),
        r"every example "
        r"has the label "
        r"'billing'",
    ),
    Case(
        "label with one example",
        validate_data(records(lambda d: d + [{"text": "a lonely one", "label": "lonely"}])),
        r"1 labels have fewer than 3 examples \(one to train on and one for each split drawn from this data\) "
        r"\('lonely'\)",
        fix="add examples or drop the label with `task.data.labels`",
    ),
    Case(
        "CSV not UTF-8",
        validate_data(csv_bytes(b"text,label\n\xff\xfe hello,a\n")),
        r"not UTF-8 text",
        fix="re-save the file as UTF-8",
    ),
    Case(
        "JSON array of strings",
        validate_data(csv_text(json.dumps(["a", "b", "c"]), name="train.json")),
        r"not objects with named "
        r"fields",
        fix='write one object per row, e.g. {"text": ..., "label": ...}',
    ),
    Case(
        "JSON array of arrays",
        validate_data(csv_text(json.dumps([["a", "b"]] * 30), name="train.json")),
        r"not objects with named "
        r"fields",
    ),
    Case(
        "parquet read as CSV",
        validate_data(parquet_file("train.csv"), format="csv"),
        r"this is a parquet file, not csv; set "
        r"`task.data.format: parquet`",
        fix="set `format: parquet` (or `auto`)",
    ),
    Case("parquet named .jsonl", validate_data(parquet_file("train.jsonl")), r"this is a parquet file, not jsonl"),
    Case("CSV read as parquet", validate_data(records(lambda d: d), format="parquet"), r"cannot read as parquet"),
    Case(
        "gzip named .csv",
        validate_data(gzip_csv),
        r"this is a gzip file, not "
        r"csv",
        fix="decompress it, or export as CSV/JSONL/Parquet",
    ),
    Case(
        "Excel named .csv",
        validate_data(csv_bytes(b"PK\x03\x04" + b"\x00" * 200)),
        r"this is a zip \(an Excel workbook\?\) "
        r"file",
    ),
    Case(
        "hf-disk on a file", validate_data(records(lambda d: d), format="hf-disk"), r"`format: hf-disk` needs a folder"
    ),
    Case(
        "parquet list labels",
        validate_data(records(lambda d: [r | {"label": [r["label"], "x"]} for r in d], name="train.parquet")),
        r"column 'label' holds lists or records",
        fix="one label per row",
    ),
    Case(
        "jsonl list texts",
        validate_data(records(lambda d: [r | {"text": [r["text"]]} for r in d], name="train.jsonl")),
        r"column 'text' holds lists",
    ),
    Case(
        "jsonl dict labels",
        validate_data(records(lambda d: [r | {"label": {"name": r["label"]}} for r in d], name="train.jsonl")),
        r"column 'label' holds lists or records",
    ),
    Case(
        "out-of-scope label typo",
        validate_data(
            records(lambda d: d + [{"text": f"other {i}", "label": "other"} for i in range(6)]),
            out_of_scope_labels=["other", "refnd"],
        ),
        r"'refnd' \(did you mean 'refund'\?\) not found",
        fix="fix the label's spelling",
    ),
    Case(
        "out-of-scope labels all unknown",
        validate_data(records(lambda d: d), out_of_scope_labels=["nothing"]),
        r"'nothing' not found in the "
        r"data's labels",
    ),
    Case(
        "out-of-scope covers every label",
        validate_data(records(lambda d: d), out_of_scope_labels=list(LABELS)),
        r"covers every label of the training data",
        fix="list only the labels that should stay unseen",
    ),
    Case(
        "labels list typo",
        validate_data(records(lambda d: d), labels=["billing", "shiping"]),
        r"'shiping' \(did you mean "
        r"'shipping'\?\)",
    ),
    Case(
        "test file unseen label",
        validate_with(
            side_file("test_path", lambda: rows(4) + [{"text": "new thing", "label": "warranty"}], "test.csv")
        ),
        r"the test data has labels never seen in training: "
        r"\['warranty'\]",
        fix="remove them or add training examples",
    ),
    Case(
        "test file shares no labels",
        validate_with(side_file("test_path", lambda: rows(4, labels=("x", "y")), "test.csv")),
        r"the test file shares no labels",
    ),
    Case(
        "validation file unseen label",
        validate_with(
            side_file("validation_path", lambda: rows(3) + [{"text": "new", "label": "warranty"}], "val.csv")
        ),
        r"the validation data has labels never seen in training: "
        r"\['warranty'\]",
        fix="remove them, or list them in `out_of_scope_labels`",
    ),
    Case(
        "validation file without text column",
        validate_with(side_file("validation_path", lambda: [{"body": "x", "label": "billing"}] * 4, "val.csv")),
        r"no column 'text'",
    ),
    Case(
        "test file missing",
        validate_with(set_key("task.data.test_path", "/nonexistent/test.csv")),
        r"data file not "
        r"found: /nonexistent/test.csv",
    ),
    Case(
        "out-of-scope file missing column",
        validate_with(side_file("out_of_scope_path", lambda: [{"body": "x"}] * 4, "oos.csv")),
        r"no column 'text'",
    ),
    Case(
        "duplicate ids",
        validate_data(records(lambda d: [r | {"id": i // 2} for i, r in enumerate(d)]), id_column="id"),
        r"ids occur more than once",
        fix="make the ids unique",
    ),
    Case("missing id column", validate_data(records(lambda d: d), id_column="uid"), r"no id column 'uid'"),
    Case(
        "column name with markup",
        validate_data(records(lambda d: d), text_column="[/INST]"),
        r"no column '\[/INST\]'",
        fix="(rich markup in messages is printed literally)",
    ),
    Case(
        "path with brackets",
        validate_with(set_key("task.data.path", "/tmp/exports [final]/x.csv")),
        r"data file not found: "
        r"/tmp/exports "
        r"\[final\]/x.csv",
    ),
    Case(
        "label with markup and one example",
        validate_data(records(lambda d: d + [{"text": "t", "label": "[bold]x[/bold]"}])),
        r"\('\[bold\]x\[/bold\]'\)",
    ),
    Case("all texts empty", validate_data(records(lambda d: [r | {"text": ""} for r in d])), r"no examples left"),
    # --- dotted overrides ---
    Case(
        "override without =",
        with_override("training.epochs"),
        r"override `training.epochs` is not key=value",
        fix="write key=value",
    ),
    Case(
        "override into a scalar",
        with_override("name.first=x"),
        r"override `name.first=x`: `name` is a single value",
        fix="stop the dotted key at the setting",
    ),
    Case(
        "override broken YAML",
        with_override("grid.train_sizes=[6,"),
        r"override `grid.train_sizes=\[6,`: the value is not valid "
        r"YAML",
        fix="quote the value",
    ),
    Case("override empty key part", with_override("training..epochs=2"), r"is not a dotted key"),
    Case(
        "override list index out of range", with_override("candidates.5.name=x"), r"`5` is not an index of a list of 1"
    ),
    Case("override list by name", with_override("candidates.tfidf.name=x"), r"`tfidf` is not an index of a list of 1"),
    Case("override wrong type", with_override("training.epochs=abc"), r"training.epochs: .*integer"),
    Case("override unknown key", with_override("training.epoch=2"), r"did you mean `epochs`"),
    Case("override unsafe name", with_override("name=../../etc"), r"name: '../../etc': use letters"),
    Case("override markup name", with_override("name='[/INST]'"), r"name: '\[/INST\]': use letters"),
    # --- model sources ---
    Case(
        "model path missing",
        validate_with(llm_candidate(lambda t: "/nonexistent/model")),
        r"model path not found: "
        r"/nonexistent/model",
        fix="point `model` at a folder, a .gguf file, or a cached hub id",
    ),
    Case(
        "model is no path and no Hub id",
        validate_with(llm_candidate(lambda t: ";")),
        r"model `;` is neither a short name .* nor a valid Hugging Face id",
        fix="spell the Hub id as org/name, or point `model` at a folder",
    ),
    Case("GGUF file missing", validate_with(llm_candidate(lambda t: str(t / "m.gguf"))), r"GGUF file not found"),
    Case(
        "folder without config.json",
        validate_with(llm_candidate(lambda t: model_folder(t, {"weights.safetensors": b"x"}))),
        r"has no config.json: not a transformers model folder",
    ),
    Case(
        "model path is a plain file",
        validate_with(llm_candidate(lambda t: (t / "m.txt").write_text("x") and str(t / "m.txt"))),
        r"is neither a model folder nor a .gguf file",
    ),
    Case(
        "gguf_file not in folder",
        validate_with(llm_candidate(lambda t: model_folder(t, {"config.json": LLAMA_CONFIG}), gguf_file="x.gguf")),
        r"has no file x.gguf",
    ),
    Case(
        "hub id not cached",
        validate_with(llm_candidate(lambda t: "nobody/no-such-model-xyz")),
        r"bakeoff never "
        r"downloads",
        fix="run without `--offline` (it downloads on first use), `hf download` it, or point `model` at a folder",
    ),
    Case(
        "hub dataset not cached, offline",
        validate_with(set_key("task.data", {"hub": "nobody/no-such-dataset-xyz"})),
        r"`task.data.hub: nobody/no-such-dataset-xyz` is not in the local `datasets` cache",
        fix="run once with network (without `--offline`), or point `task.data.path` at a file",
    ),
    Case(
        "hub and path both given",
        validate_with(set_key("task.data.hub", "PolyAI/banking77")),
        r"exactly one of `task.data.path` \(a file\) or `task.data.hub`",
        fix="keep one of the two",
    ),
    Case(
        "pickle weights without opt-in",
        validate_with(
            llm_candidate(lambda t: model_folder(t, {"config.json": LLAMA_CONFIG, "pytorch_model.bin": b"x"}))
        ),
        r"has only pickle weights \(.bin\).*allow_pickle: "
        r"true",
        fix="`allow_pickle: true` if you trust the file, or convert to safetensors",
    ),
    Case(
        "remote code without opt-in",
        validate_with(
            llm_candidate(
                lambda t: model_folder(
                    t,
                    {
                        "config.json": LLAMA_CONFIG | {"auto_map": {"AutoModelForCausalLM": "modeling_x.X"}},
                        "model.safetensors": b"x",
                    },
                )
            )
        ),
        r"needs its own code.*trust_remote_code: "
        r"true",
        fix="`trust_remote_code: true` on that candidate if you trust it",
    ),
    Case(
        "unreadable config.json",
        validate_with(
            llm_candidate(lambda t: model_folder(t, {"config.json": b"{not json", "model.safetensors": b"x"}))
        ),
        r"cannot read .*config.json",
    ),
    # --- `run` refuses what `validate` refuses, before any trial ---
    Case(
        "run: unknown GPU",
        run_refused(set_key("efficiency.gpus", ["a10g", "h1000"])),
        r"unknown GPU `h1000`",
        check=no_trial_ran,
    ),
    Case(
        "run: unknown perturbation",
        run_refused(set_key("evaluation.perturbations", [{"name": "typo"}])),
        r"unknown perturbation "
        r"`typo`",
        check=no_trial_ran,
    ),
    Case(
        "run: pickle weights",
        run_refused(llm_candidate(lambda t: model_folder(t, {"config.json": LLAMA_CONFIG, "pytorch_model.bin": b"x"}))),
        r"allow_pickle: true",
        check=no_trial_ran,
    ),
    Case(
        "run: remote code",
        run_refused(
            llm_candidate(
                lambda t: model_folder(
                    t,
                    {
                        "config.json": LLAMA_CONFIG | {"auto_map": {"AutoModelForCausalLM": "m.X"}},
                        "model.safetensors": b"x",
                    },
                )
            )
        ),
        r"trust_remote_code: true",
        check=no_trial_ran,
    ),
    Case(
        "run: price for GPU not estimated",
        run_refused(lambda c, t: c.update(efficiency={"gpus": ["a10g"], "usd_per_hour": {"h100": 2.0}})),
        r"not in efficiency.gpus",
        check=no_trial_ran,
    ),
    Case(
        "run: validation label unseen",
        run_refused(side_file("validation_path", lambda: rows(3) + [{"text": "new", "label": "warranty"}], "val.csv")),
        r"the validation data has labels never seen",
        check=no_trial_ran,
    ),
    Case(
        "run: out-of-scope covers every label",
        run_refused(lambda c, t: c["task"]["data"].update(out_of_scope_labels=list(LABELS))),
        r"covers every label",
        check=no_trial_ran,
    ),
    # --- finished run folders: report and recommend never destroy evidence ---
    Case(
        "report: not a run folder",
        lambda tmp: ["report", str(tmp)],
        r"is not a bakeoff run folder \(no results.sqlite\)",
    ),
    Case(
        "report: damaged store",
        damage_store,
        r"results store damaged: .*Nothing was "
        r"overwritten",
        needs_run=True,
        check=outputs_untouched,
        fix="move results.sqlite away and run the same command again; results.json keeps the last good results",
    ),
    Case(
        "report: emptied store",
        empty_store,
        r"holds no trials: nothing to report",
        needs_run=True,
        check=outputs_untouched,
        fix="run `bakeoff run CONFIG` again",
    ),
    Case(
        "report: only trial stuck running",
        stuck_running,
        r"no recommendation: no trial has finished \(1 running or interrupted \(tfidf/n6/s0\)\); .*run "
        r"`bakeoff run CONFIG` again to resume it",
        exit_code=0,
        needs_run=True,
        fix="run `bakeoff run CONFIG` again: it resumes the trial",
    ),
    Case(
        "recommend: damaged store",
        lambda tmp: damage_store(tmp) and ["recommend", str(tmp / "run"), "sla_p95_ms=100"],
        r"results store "
        r"damaged",
        needs_run=True,
        check=outputs_untouched,
    ),
    Case("run: damaged store", rerun_damaged, r"results store damaged", needs_run=True, check=outputs_untouched),
    Case(
        "recommend: unknown GPU",
        on_run("recommend", "RUN", "gpu=h1000"),
        r"gpu `h1000`: this run estimated only",
        needs_run=True,
        check=outputs_untouched,
        fix="pick a GPU the run estimated, or add it to `efficiency.gpus` and re-run",
    ),
    Case(
        "recommend: unknown answer",
        on_run("recommend", "RUN", "sla_ms=100"),
        r"sla_ms: unknown key; did you mean "
        r"`sla_p95_ms`",
        needs_run=True,
        check=outputs_untouched,
    ),
    Case(
        "recommend: not key=value",
        on_run("recommend", "RUN", "sla"),
        r"`sla` is not "
        r"key=value",
        needs_run=True,
        check=outputs_untouched,
    ),
    Case(
        "recommend: wrong type",
        on_run("recommend", "RUN", "sla_p95_ms=fast"),
        r"sla_p95_ms: "
        r".*number",
        needs_run=True,
        check=outputs_untouched,
    ),
    Case(
        "recommend: broken YAML",
        on_run("recommend", "RUN", "gpu=[a"),
        r"the value is not valid "
        r"YAML",
        needs_run=True,
        check=outputs_untouched,
    ),
    Case(
        "recommend: negative SLA",
        on_run("recommend", "RUN", "sla_p95_ms=-5"),
        r"sla_p95_ms: .*greater than 0",
        needs_run=True,
        check=outputs_untouched,
    ),
    Case(
        "recommend: infinite SLA",
        on_run("recommend", "RUN", "sla_p95_ms=inf"),
        r"sla_p95_ms: .*finite number",
        needs_run=True,
        check=outputs_untouched,
        fix="give a number (results.json must stay JSON: Infinity is not)",
    ),
    Case(
        "report: store from another version",
        old_layout_store,
        r"has another layout than this bakeoff writes \(no such column: attempts\)",
        needs_run=True,
        check=outputs_untouched,
        fix="use the bakeoff version that made it, or move results.sqlite away and re-run",
    ),
    Case(
        "recommend: a stored row cut short",
        truncated_result,
        r"results store damaged",
        needs_run=True,
        check=outputs_untouched,
    ),
    Case(
        "candidate name too long",
        validate_with(lambda c, t: c["candidates"][0].update(name="\u00fc" * 120)),
        r"240 bytes; use at most 200 \(UTF-8\): it names a folder",
        fix="a shorter name",
    ),
]


def task_of_type(kind: str, **task_keys) -> Callable[[dict, Path], None]:
    """An extraction or generation task on the base CSV (text, label), with extra `task` keys."""

    def edit(config: dict, tmp: Path) -> None:
        config["task"].update({"type": kind, **task_keys})

    return edit


def extraction_with_out_of_scope_file(config: dict, tmp: Path) -> None:
    (tmp / "oos.csv").write_text("text\nwhat is the weather\n")
    config["task"].update({"type": "extraction", "fields": {"order_id": "label"}})
    config["task"]["data"]["out_of_scope_path"] = str(tmp / "oos.csv")


def builtin_of_type(kind: str, builtin: str, candidate: str) -> Callable[[dict, Path], None]:
    def edit(config: dict, tmp: Path) -> None:
        config["task"] = {"type": kind, "builtin": builtin, "builtin_examples": 100}
        config["candidates"] = [{"name": "base", "model": candidate}]

    return edit


CASES += [
    Case(
        "task: built-in variant of another type",
        validate_with(builtin_of_type("extraction", "support-tickets", "crf")),
        r"task.builtin `support-tickets` is a classification task but task.type is `extraction`",
        fix="use `builtin: support-tickets-extraction` for extraction",
    ),
    Case(
        "extraction: no target column or fields",
        validate_with(task_of_type("extraction")),
        r"task.type extraction needs `task.data.target_column`",
        fix="name the column of JSON records, or map fields to columns",
    ),
    Case(
        "generation: no reference column",
        validate_with(task_of_type("generation")),
        r"task.type generation needs `task.data.reference_column`",
        fix="name the column of reference outputs",
    ),
    Case(
        "classification: extraction key set",
        validate_with(set_key("task.fields", {"order_id": "text"})),
        r"`task.fields` is for another task type",
        fix="set `task.type: extraction`, or remove the key",
    ),
    Case(
        "extraction: out-of-scope file set",
        validate_with(extraction_with_out_of_scope_file),
        r"`task.data.out_of_scope_path` has no use in an extraction task: out-of-scope items are scored for "
        r"classification and generation only",
        fix="remove it: an extraction run has no out-of-scope evaluation",
    ),
    Case(
        "extraction: classification baseline",
        validate_with(builtin_of_type("extraction", "support-tickets-extraction", "tfidf-logreg")),
        r"`tfidf-logreg` is a classification baseline and task.type is `extraction`; use crf",
        fix="use `crf` for extraction, `tfidf-retrieval` for generation",
    ),
    Case(
        "extraction: sampled constrained decoding",
        validate_with(task_of_type("extraction", fields={"order_id": "label"}, decoding={"strategy": "sample"})),
        r"constrained extraction decodes greedily",
        fix="set `task.decoding.strategy: greedy`",
    ),
    Case(
        "extraction: costs",
        validate_with(
            lambda config, tmp: config.update(
                task={"type": "extraction", "builtin": "support-tickets-extraction"},
                candidates=[{"name": "crf", "model": "crf"}],
                decision={"costs": {"error": 2.0}},
            )
        ),
        r"decision.costs: costing errors applies to classification runs; task.type is `extraction`",
        fix="remove `decision.costs` (extraction and generation are not costed yet)",
    ),
    Case(
        "extraction: unknown built-in field",
        validate_with(
            lambda config, tmp: config.update(
                task={"type": "extraction", "builtin": "support-tickets-extraction", "fields": ["order_id", "sku"]},
                candidates=[{"name": "crf", "model": "crf"}],
            )
        ),
        r"task.fields: \['sku'\] are not fields of the built-in task",
        fix="pick from customer, order_id, amount, date, product",
    ),
]

# Reliability round 3 (issue 42), one module per area. Imported here, at the end, so that they can take the
# helpers above from this module (import bad_inputs first, never those modules on their own).
from bad_inputs_serving import CASES as SERVING_CASES  # noqa: E402
from bad_inputs_tasks import CASES as TASK_CASES  # noqa: E402
from bad_inputs_tools import CASES as TOOL_CASES  # noqa: E402

CASES += TASK_CASES + TOOL_CASES + SERVING_CASES

assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
