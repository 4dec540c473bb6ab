"""Extraction and generation tasks: items with a target output instead of a class label.

Each item is a text and a target string: for extraction the record as compact JSON (`record_json`: the
declared fields in their declared order, string or null values, no spaces), for generation the reference
output. `Examples.labels` then only stratify the splits and learning-curve subsets (the built-in tickets'
categories; a user file's `label_column` when it has one, else one stratum), so everything downstream of
splitting (nested subsets, stratified samples) works unchanged.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from bakeoff.config import DataSpec, TaskSpec
from bakeoff.data import validate
from bakeoff.data.examples import Examples
from bakeoff.data.load import check_ids, first_duplicate_key, label_text, load_texts, read_table
from bakeoff.data.splits import held_out_splits
from bakeoff.data.ticket_replies import FALLBACK_REPLY, reply_for
from bakeoff.data.tickets import RECORD_FIELDS, generate_out_of_scope, generate_ticket_records
from bakeoff.errors import DataError

ONE_STRATUM = "all"  # the stratum of every item when the data has no label column
DEFAULT_LABEL_COLUMN = DataSpec.model_fields["label_column"].default  # may be absent from target data
DEFAULT_INSTRUCTIONS = {
    "extraction": "Extract the fields of the customer message as JSON (null where the message does not say).",
    "generation": "Write the first reply to the customer message.",
}
CLASSIFICATION_INSTRUCTION = "Classify the customer message into one category."  # TaskSpec.instruction's default


def target_fields(spec: TaskSpec) -> list[str]:
    """The extraction record's fields, in order (empty for generation)."""
    if spec.type != "extraction":
        return []
    if spec.fields is None:
        return list(RECORD_FIELDS)
    return list(spec.fields)


def instruction(spec: TaskSpec) -> str:
    """The task's instruction; the classification default is swapped for one that fits the task type."""
    if spec.instruction == CLASSIFICATION_INSTRUCTION and spec.type in DEFAULT_INSTRUCTIONS:
        text = DEFAULT_INSTRUCTIONS[spec.type]
    else:
        text = spec.instruction
    if spec.type == "extraction":
        text = f"{text} Fields: {', '.join(target_fields(spec))}."
    return text


def fallback_reference(spec: TaskSpec) -> str | None:
    """The reply expected for out-of-scope items (generation): the user's, or the built-in task's."""
    if spec.fallback_reference is not None:
        return spec.fallback_reference
    return FALLBACK_REPLY if spec.builtin == "support-tickets-replies" else None


def record_json(record: dict, fields: list[str]) -> str:
    """The record as the model writes it: declared fields in order, strings or null, compact separators."""
    clean = {}
    for field in fields:
        value = record.get(field)
        if value is not None and not isinstance(value, str):
            value = None if isinstance(value, float) and value != value else value_text(value)  # NaN: missing
        clean[field] = value if value is None or value.strip() else None
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"))


def value_text(value) -> str:
    """A non-string field value as the text it stands for: `true`/`false` as JSON writes them, and a
    whole-number float as its integer (a JSON `1` in a column with a null arrives from pandas as 1.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return label_text(value)


def check_records(records: list[dict], fields: list[str], path: Path | str, main: bool = True) -> list[str]:
    """Refuse what a record of strings cannot hold; in the main data file a field that never has a value,
    which would score every model perfectly, and in a test or validation file records with no value for any
    field (keys other than the training data's: an all-null test set, on which a model that always writes
    null scores 100%). Warn about rows that say nothing. Returns the warnings."""
    name = Path(str(path)).name
    for row, record in enumerate(records):
        for field in fields:
            if isinstance(record.get(field), (list, dict)):
                raise DataError(
                    f"{path}: data row {row + 1}: field `{field}` holds a "
                    f"{'list' if isinstance(record[field], list) else 'record'} "
                    f"({json.dumps(record[field], ensure_ascii=False)[:60]}); each field's value must be a string, "
                    "a number or null (flatten it into fields of its own, or write it as one string)"
                )
    found = sorted({key for record in records for key in record})
    never = [f for f in fields if all(record.get(f) in (None, "") for record in records)]
    warnings = []
    if never and not main and len(never) == len(fields):
        raise DataError(
            f"{path}: no record has a value for any of `task.fields` ({', '.join(fields)}), so a model that "
            f"always writes null would score 100% on it; its records' keys are: "
            f"{', '.join(found[:8]) or 'none (every record is empty)'}. Use the training data's keys"
        )
    if never and not main:  # a small test or validation file may lack a rare field
        warnings.append(f"{name}: never a value for {', '.join(never)}")
    elif never:
        raise DataError(
            f"{path}: field{'s' if len(never) > 1 else ''} {', '.join(f'`{f}`' for f in never)} never "
            f"{'has' if len(never) == 1 else 'have'} a value (null in every row), so every model would score "
            f"it perfectly; the records' keys are: {', '.join(found) or 'none (every record is empty)'}. "
            "Check `task.fields` against them"
        )
    empty = sum(all(record.get(f) in (None, "") for f in fields) for record in records)
    if empty:
        warnings.append(f"{name}: {empty} of {len(records)} records have no value for any field")
    extra = sorted(set(found) - set(fields))
    if extra:
        warnings.append(f"{name}: record keys not in `task.fields` are ignored: {', '.join(extra[:8])}")
    return warnings


def load_target_examples(path: Path, spec: TaskSpec, main: bool = True) -> tuple[Examples, list[str]]:
    """Texts, strata and targets from a user file (see `target_examples`)."""
    return target_examples(read_table(path, spec.data.format), spec, path, main)


def target_examples(
    frame: pd.DataFrame, spec: TaskSpec, path: Path | str, main: bool = True
) -> tuple[Examples, list[str]]:
    """Texts, strata and targets from a file's or a Hub split's table (`path` names it), refusing missing
    columns and unreadable records by row; and warnings about what it says oddly (see `check_records`;
    empty references dropped). `main`: the training data, not a test or validation file."""
    data = spec.data
    name = Path(str(path)).name
    if frame.empty:
        raise DataError(f"{path}: the file has no rows")
    needed = [data.text_column]
    if spec.type == "generation":
        needed.append(data.reference_column)
    elif data.target_column is not None:
        needed.append(data.target_column)
    else:
        needed += list((spec.fields or {}).values())
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(repr(m) for m in missing)}; columns are {list(frame.columns)}. "
            "Set `task.data.text_column`, `task.data.target_column`/`reference_column` or `task.fields`."
        )
    if main and data.label_column != DEFAULT_LABEL_COLUMN and data.label_column not in frame.columns:
        # Without the column every item is one stratum: the splits the user asked to balance would not be. The
        # default name may be absent (a resolved spec written out whole holds it, asked for or not).
        raise DataError(
            f"{path}: no column {data.label_column!r} (task.data.label_column); columns are {list(frame.columns)}. "
            "Name the column of categories that should balance the splits, or remove the key"
        )
    if data.id_column is not None:
        check_ids(frame, data.id_column, path)
    texts = frame[data.text_column].fillna("").astype(str).tolist()
    strata = (
        frame[data.label_column].fillna("").astype(str).str.strip().tolist()
        if data.label_column in frame.columns
        else [ONE_STRATUM] * len(frame)
    )
    warnings: list[str] = []
    if spec.type == "generation":
        targets = [value_text(v) if v is not None and v == v else "" for v in frame[data.reference_column]]
        blank = [i for i, target in enumerate(targets) if not target.strip()]
        if len(blank) == len(targets):
            raise DataError(
                f"{path}: column {data.reference_column!r} is empty in every row: there is no reference output "
                "to learn or score against"
            )
        if blank:  # an empty reference rewards writing nothing: the row is dropped, and counted
            dropped = set(blank)
            keep = [i for i in range(len(targets)) if i not in dropped]
            warnings.append(f"{name}: {len(blank)} rows with an empty reference dropped")
            texts, strata, targets = ([xs[i] for i in keep] for xs in (texts, strata, targets))
    else:
        fields = target_fields(spec)
        records = (
            [_record(cell, path, row) for row, cell in enumerate(frame[data.target_column])]
            if data.target_column is not None
            else [
                {field: _cell(frame[column].iloc[row]) for field, column in spec.fields.items()}
                for row in range(len(frame))
            ]
        )
        warnings += check_records(records, fields, path, main)
        targets = [record_json(r, fields) for r in records]
    return Examples(texts, strata, targets), warnings


def _cell(value):
    return None if value is None or (isinstance(value, float) and value != value) else value


def _record(cell, path: Path | str, row: int) -> dict:
    if isinstance(cell, dict):
        return cell
    if cell is None or (isinstance(cell, float) and cell != cell) or str(cell).strip() == "":
        return {}  # no record: every field missing (null)
    try:
        value = json.loads(str(cell), object_pairs_hook=_pairs)
    except _RepeatedKey as err:
        raise DataError(
            f"{path}: data row {row + 1}: the target record names `{err.key}` twice; JSON would keep only the "
            "last value: write each key once"
        ) from None
    except ValueError:
        raise DataError(
            f"{path}: data row {row + 1}: `task.data.target_column` is not a JSON object ({str(cell)[:60]}); "
            'write each target as {"field": "value", ...}'
        ) from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: data row {row + 1}: the target is JSON but not an object ({str(cell)[:60]})")
    return value


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    """`json.loads` hook: an object naming a key twice is an error (json keeps the last value silently)."""
    repeated = first_duplicate_key(pairs)
    if repeated is not None:
        raise _RepeatedKey(repeated)
    return dict(pairs)


def builtin_examples(spec: TaskSpec, n: int, seed: int, phrasings: str = "seen") -> Examples:
    """The built-in tickets with their target records (extraction) or reference replies (generation)."""
    tickets, records = generate_ticket_records(n, seed=seed, phrasings=phrasings)
    if spec.type == "generation":
        targets = [reply_for(category, record) for category, record in zip(tickets.labels, records)]
    else:
        targets = [record_json(record, target_fields(spec)) for record in records]
    return Examples(tickets.texts, tickets.labels, targets)


def prepare_target_task(spec: TaskSpec):
    """A TaskData whose examples carry targets; splits stratified by the strata, as for classification."""
    from bakeoff.data.task import TaskData  # task.py dispatches here: imported late to avoid a cycle

    split = spec.split
    out_of_scope: list[str] = []
    warnings: list[str] = []
    paraphrases = hub_source = None
    given_test = given_validation = None
    if spec.builtin is not None:
        everything = builtin_examples(spec, spec.builtin_examples, split.seed)
        paraphrases = builtin_examples(
            spec, max(50, round(spec.builtin_examples * split.test_fraction)), split.seed, phrasings="held_out"
        )
        if spec.type == "generation":
            out_of_scope = generate_out_of_scope(max(20, spec.builtin_examples // 10), seed=split.seed)
    elif spec.data.hub is not None:
        everything, given_test, given_validation, hub_source, warnings = _hub_target_splits(spec)
    else:
        data = spec.data
        everything, warnings = load_target_examples(data.path, spec)
        if data.test_path:
            given_test, found = load_target_examples(data.test_path, spec, main=False)
            warnings += found
        if data.validation_path:
            given_validation, found = load_target_examples(data.validation_path, spec, main=False)
            warnings += found
    if spec.type == "generation" and spec.data is not None and spec.data.out_of_scope_path:  # extraction has none
        out_of_scope = load_texts(spec.data.out_of_scope_path, spec.data)
    everything, empty_dropped = validate.drop_empty(everything)
    if len(everything) < 4:
        raise DataError(f"the data has {len(everything)} items with text; a task needs at least 4")
    try:
        train_pool, validation, test, dropped = held_out_splits(everything, given_test, given_validation, split)
    except DataError:
        # Strata only balance the splits here (they are not classes): a column too fine-grained to stratify
        # by (a stratum of one row, or more strata than held-out items) must not stop an extraction or
        # generation task, so the splits are then drawn at random, and the report says so.
        if len(set(everything.labels)) == 1:
            raise
        column = "the built-in categories" if spec.builtin is not None else f"column {spec.data.label_column!r}"
        warnings.append(
            f"{column} has {len(set(everything.labels))} values, too many or too rare to stratify the splits by "
            "(each needs a row in training and in every held-out split): the splits are drawn at random"
        )
        everything, given_test, given_validation = (
            None if examples is None else Examples(examples.texts, [ONE_STRATUM] * len(examples), examples.targets)
            for examples in (everything, given_test, given_validation)
        )
        train_pool, validation, test, dropped = held_out_splits(everything, given_test, given_validation, split)
    empty_dropped += dropped
    # Strata of held-out files need not occur in training (they are not classes); map unseen ones to one.
    known = set(train_pool.labels)
    test = _known_strata(test, known)
    validation = _known_strata(validation, known)
    near = validate.near_duplicate_mask(train_pool.texts, test.texts)
    seen = {t.strip().lower() for t in train_pool.texts}
    data_report = validate.report(train_pool, validation, test, empty_dropped, warnings, labels_are_classes=False)
    return TaskData(
        train_pool=train_pool,
        validation=validation,
        test=test,
        labels=sorted(known),
        out_of_scope=out_of_scope,
        report=replace(data_report, hub=hub_source) if hub_source else data_report,
        test_near_duplicate=[bool(near[i]) or t.strip().lower() in seen for i, t in enumerate(test.texts)],
        paraphrases=paraphrases,
    )


def _hub_target_splits(spec: TaskSpec):
    """`task.data.hub`: the training split and the optional test/validation splits as target examples, with
    the same checks as files, and what to record (as `data.task.load_hub_splits` does for classification)."""
    from bakeoff.data.hub import load_split, source_record

    data = spec.data
    loaded, warnings, commits = [], [], set()
    for name, main in ((data.split, True), (data.test_split, False), (data.validation_split, False)):
        if name is None:
            loaded.append(None)
            continue
        part = load_split(data, name)
        examples, found = target_examples(part.frame, spec, part.where, main)
        loaded.append(examples)
        warnings += found
        commits.add(part.commit_sha)
    return loaded[0], loaded[1], loaded[2], source_record(data, commits), warnings


def _known_strata(examples: Examples, known: set[str]) -> Examples:
    if set(examples.labels) <= known:
        return examples
    first = sorted(known)[0]
    labels = [label if label in known else first for label in examples.labels]
    return Examples(examples.texts, labels, examples.targets)
