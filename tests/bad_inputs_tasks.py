"""Bad inputs of reliability round 3 (issue 42), tasks: cases in the form of tests/bad_inputs.py.

bad_inputs.py adds these to its CASES at its end (import bad_inputs, not this module, first).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bad_inputs import (
    LLAMA_CONFIG,
    Case,
    base_config,
    model_folder,
    raw_config,
    rows,
    validate_with,
    with_override,
    write_config,
    write_csv,
)

CANDIDATE = {"extraction": "crf", "generation": "tfidf-retrieval"}


def then(*edits: Callable[[dict, Path], None]) -> Callable[[dict, Path], None]:
    """Config edits applied in turn."""

    def edit(config: dict, tmp: Path) -> None:
        for one in edits:
            one(config, tmp)

    return edit


def set_data(**keys) -> Callable[[dict, Path], None]:
    return lambda config, tmp: config["task"]["data"].update(keys)


def target_rows(n: int = 24, start: int = 0) -> list[dict]:
    """Items of an extraction or generation task: text, two field columns, a JSON record, a reply, a category."""
    return [
        {
            "text": f"refund order {1000 + i} for ${i}.00 please, my {('billing', 'refund')[i % 2]} issue",
            "order": str(1000 + i),
            "amount": f"${i}.00",
            "record": json.dumps({"order_id": str(1000 + i), "amount": f"${i}.00"}),
            "reply": f"Hi, order {1000 + i} is refunded.",
            "category": ("billing", "refund")[i % 2],
        }
        for i in range(start, start + n)
    ]


def target_task(kind: str, data: dict | None = None, **task_keys) -> Callable[[dict, Path], None]:
    """An extraction task (fields mapped to columns) or a generation task (replies) on target_rows(), with
    extra `task.data` and `task` keys; the baseline that serves the type."""

    def edit(config: dict, tmp: Path) -> None:
        path = write_csv(tmp / "targets.csv", target_rows())
        fields = {"fields": {"order_id": "order", "amount": "amount"}} if kind == "extraction" else {}
        reference = {"reference_column": "reply"} if kind == "generation" else {}
        config["task"] = {"type": kind, "data": {"path": str(path), **reference, **(data or {})}, **fields, **task_keys}
        config["candidates"] = [{"name": "base", "model": CANDIDATE[kind]}]

    return edit


def held_out_csv(key: str, records_: list[dict]) -> Callable[[dict, Path], None]:
    """Sets `task.data.<key>` (test_path, validation_path) to a CSV of the given rows."""

    def edit(config: dict, tmp: Path) -> None:
        config["task"]["data"][key] = str(write_csv(tmp / f"{key}.csv", records_))

    return edit


def held_out_file(key: str, records_: list[dict]) -> Callable[[dict, Path], None]:
    """An extraction task of JSON records whose test or validation file (`key`) holds the given rows."""
    return then(
        target_task("extraction", {"target_column": "record"}, fields=["order_id", "amount"]),
        held_out_csv(key, records_),
    )


def other_keys(rows_: list[dict]) -> list[dict]:
    return [r | {"record": json.dumps({"OrderID": r["order"], "Total": r["amount"]})} for r in rows_]


def empty_fields(rows_: list[dict]) -> list[dict]:
    return [r | {"order": "", "amount": ""} for r in rows_]


def small_context_llm(config: dict, tmp: Path) -> None:
    folder = model_folder(tmp, {"config.json": LLAMA_CONFIG | {"max_position_embeddings": 256}, "m.safetensors": b""})
    config["candidates"].append({"name": "llm", "model": folder})


def hub_folder(config: dict, tmp: Path) -> None:
    """A dataset repo folder whose training split names a column the config does not have."""
    (tmp / "tickets").mkdir()
    write_csv(tmp / "tickets" / "train.csv", [{k: r[k] for k in ("text", "order")} for r in target_rows()])
    config["task"]["data"] = {"hub": str(tmp / "tickets"), "reference_column": "reply"}


def json_rows(name: str, text: Callable[[list[dict]], str]) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_text(text(rows()), encoding="utf-8")
        return ["validate", str(write_config(tmp, base_config(tmp, path)))]

    return make


def _line(row: dict, twice: bool) -> str:
    line = json.dumps(row)
    return line[:-1] + ', "label": "refund"}' if twice else line


def record_twice(config: dict, tmp: Path) -> None:
    target_task("extraction", {"target_column": "record"}, fields=["order_id", "amount"])(config, tmp)
    data = target_rows()
    data[4]["record"] = '{"order_id": "1", "amount": "$1", "order_id": "2"}'
    write_csv(tmp / "targets.csv", data)


FIELD_TWICE_YAML = b"""name: twice
task:
  type: extraction
  data: {path: train.csv}
  fields:
    order_id: order
    amount: amount
    order_id: text
candidates: [{name: crf, model: crf}]
"""

SECTION_TWICE_YAML = b"""name: twice
task: {builtin: support-tickets}
candidates: [{name: tfidf, model: tfidf-logreg}]
training: {epochs: 2}
grid: {train_sizes: [20]}
training: {epochs: 5}
"""

CASES: list[Case] = [
    # ----- item 1: `task.data.hub` for extraction and generation -----
    Case(
        "extraction: hub id not cached",
        validate_with(then(target_task("extraction"), set_data(path=None, hub="nobody/no-such-xyz"))),
        r"`task.data.hub: nobody/no-such-xyz`",
        fix="run once online (without --offline / HF_HUB_OFFLINE=1), or check the Hub id",
    ),
    Case(
        "generation: malformed hub id",
        validate_with(then(target_task("generation"), set_data(path=None, hub="no//such id"))),
        r"`task.data.hub: no//such id` is neither a local dataset folder nor a Hub id",
        fix="write the Hub id as owner/name, or give a local dataset folder",
    ),
    Case(
        "generation: hub folder without the reference column",
        validate_with(then(target_task("generation"), hub_folder)),
        r"tickets:train: no column 'reply'",
        fix="set `task.data.reference_column` to a column of the dataset",
    ),
    # ----- item 2: settings that were silently accepted -----
    Case(
        "extraction: field mapped to the text column",
        validate_with(target_task("extraction", fields={"order_id": "order", "note": "text"})),
        r"task.fields: `note` maps to `text`, the input text column",
        fix="map each field to the column that holds its value, never the input text",
    ),
    Case(
        "extraction: target column is the text column",
        validate_with(target_task("extraction", {"target_column": "text"}, fields=["order_id"])),
        r"task.data.target_column and task.data.text_column are both `text`",
        fix="set `target_column` to the column of JSON records",
    ),
    Case(
        "generation: reference column is the text column",
        validate_with(target_task("generation", {"reference_column": "text"})),
        r"task.data.reference_column and task.data.text_column are both `text`",
        fix="set `reference_column` to the column of reference outputs",
    ),
    Case(
        "extraction: label column missing",
        validate_with(target_task("extraction", {"label_column": "categroy"})),
        r"no column 'categroy' \(task.data.label_column\)",
        fix="name the column of categories that balances the splits, or remove `label_column`",
    ),
    Case(
        "generation: label column missing",
        validate_with(target_task("generation", {"label_column": "intent"})),
        r"no column 'intent' \(task.data.label_column\)",
        fix="name the column of categories that balances the splits, or remove `label_column`",
    ),
    Case(
        "extraction: labels set",
        validate_with(target_task("extraction", {"label_column": "category", "labels": ["billing"]})),
        r"`task.data.labels` has no use in an extraction task",
        fix="remove `labels`: extraction and generation read every row",
    ),
    Case(
        "generation: max_per_label set",
        validate_with(target_task("generation", {"max_per_label": 5})),
        r"`task.data.max_per_label` has no use in a generation task",
        fix="remove `max_per_label`; to use fewer rows, write a smaller file",
    ),
    Case(
        "extraction: id column missing",
        validate_with(target_task("extraction", {"id_column": "ticket_id"})),
        r"no id column 'ticket_id' \(task.data.id_column\)",
        fix="name the column of item ids, or remove `id_column`",
    ),
    Case(
        "generation: repeated ids",
        validate_with(target_task("generation", {"id_column": "category"})),
        r"2 ids occur more than once",
        fix="make every id unique",
    ),
    Case(
        "extraction: test file with other keys",
        validate_with(held_out_file("test_path", other_keys(target_rows(8, 100)))),
        r"test_path.csv: no record has a value for any of `task.fields` \(order_id, amount\), so a model that "
        r"always writes null would score 100%",
        fix="write the test file's records with the training data's keys",
    ),
    Case(
        "extraction: validation file with other keys",
        validate_with(held_out_file("validation_path", other_keys(target_rows(8, 100)))),
        r"validation_path.csv: no record has a value for any of `task.fields`",
        fix="write the validation file's records with the training data's keys",
    ),
    Case(
        "extraction: test file with empty field columns",
        validate_with(then(target_task("extraction"), held_out_csv("test_path", empty_fields(target_rows(8, 100))))),
        r"test_path.csv: no record has a value for any of `task.fields`",
        fix="fill the test file's field columns (or fix `task.fields`)",
    ),
    Case(
        "generation: blank fallback reference",
        validate_with(target_task("generation", fallback_reference="  ")),
        r"task.fallback_reference: blank",
        fix="write the reply expected for out-of-scope items, or remove the key",
    ),
    Case(
        "generation: fallback reference without out-of-scope items",
        validate_with(target_task("generation", fallback_reference="Sorry, I can only help with orders.")),
        r"task.fallback_reference is scored on out-of-scope items, and there are none",
        fix="set `task.data.out_of_scope_path`, or remove `fallback_reference`",
    ),
    Case(
        "generation: temperature with greedy decoding",
        validate_with(target_task("generation", decoding={"temperature": 0.2})),
        r"task.decoding.temperature: 0.2 is for sampled decoding, but task.decoding.strategy is greedy",
        fix="set `task.decoding.strategy: sample`, or remove the sampling settings",
    ),
    Case(
        "extraction: top_p with greedy decoding",
        validate_with(target_task("extraction", decoding={"strategy": "greedy", "top_p": 0.5})),
        r"task.decoding.top_p: 0.5 is for sampled decoding",
        fix="set `task.decoding.strategy: sample`, or remove the sampling settings",
    ),
    Case(
        "generation: unknown sampling setting",
        validate_with(target_task("generation", decoding={"strategy": "sample", "top_k": 40})),
        r"task.decoding.top_k: unknown key",
        fix="use `temperature` and `top_p`",
    ),
    Case(
        "generation: max_new_tokens beyond the model's context",
        validate_with(then(target_task("generation", decoding={"max_new_tokens": 200}), small_context_llm)),
        r"candidate `llm`: task.decoding.max_new_tokens 200 \+ training.max_prompt_tokens 192 = 392 tokens exceed "
        r"the model's context of 256 \(max_position_embeddings in its config.json\); set task.decoding.max_new_tokens "
        r"to at most 64",
        fix="lower `task.decoding.max_new_tokens` (or `training.max_prompt_tokens`) to fit the model's context",
    ),
    # ----- item 3: keys written twice -----
    Case(
        "yaml: field named twice in the mapping form",
        raw_config(FIELD_TWICE_YAML),
        r"line 8: key `order_id` is written twice in one mapping \(first on line 6\)",
        fix="write each key once: YAML keeps only the last",
    ),
    Case(
        "yaml: section written twice",
        raw_config(SECTION_TWICE_YAML),
        r"line 6: key `training` is written twice in one mapping \(first on line 4\)",
        fix="merge the two sections into one",
    ),
    Case(
        "yaml: key twice in an override",
        with_override("task.fields={order_id: order, order_id: text}"),
        r"override `task.fields=\{order_id: order, order_id: text\}`: key `order_id` appears twice",
        fix="write each key once in the override's value",
    ),
    Case(
        "data: JSON Lines row with a key twice",
        json_rows("train.jsonl", lambda d: "".join(_line(r, i == 2) + "\n" for i, r in enumerate(d))),
        r"train.jsonl: data row 3 names the key `label` twice",
        fix="write each key of a JSON row once",
    ),
    Case(
        "data: JSON array row with a key twice",
        json_rows("train.json", lambda d: "[" + ",\n".join(_line(r, i == 5) for i, r in enumerate(d)) + "]"),
        r"train.json: data row 6 names the key `label` twice",
        fix="write each key of a JSON row once",
    ),
    Case(
        "extraction: target record with a key twice",
        validate_with(record_twice),
        r"data row 5: the target record names `order_id` twice",
        fix="write each key of a target record once",
    ),
    Case(
        "data: JSON Lines nested record with a key twice",
        json_rows(
            "train.jsonl",
            lambda d: "".join(
                json.dumps(r)[:-1]
                + (', "record": {"a": "1", "a": "2"}}' if i == 7 else ', "record": {"a": "1"}}')
                + "\n"
                for i, r in enumerate(d)
            ),
        ),
        r"train.jsonl: data row 8 names the key `a` twice",
        fix="write each key of a target record once",
    ),
]
