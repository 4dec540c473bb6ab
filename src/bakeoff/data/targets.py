"""Extraction and generation tasks: items with a target output instead of a class label.

Each item is a text and a target string: for extraction the record as compact JSON (`record_json`: the
declared fields in their declared order, string or null values, no spaces), for generation the reference
output. `Examples.labels` then only stratify the splits and learning-curve subsets (the built-in tickets'
categories; a user file's `label_column` when it has one, else one stratum), so everything downstream of
splitting (nested subsets, stratified samples) works unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from bakeoff.config import TaskSpec
from bakeoff.data import validate
from bakeoff.data.examples import Examples
from bakeoff.data.load import label_text, load_texts, read_table
from bakeoff.data.splits import held_out_splits
from bakeoff.data.ticket_replies import FALLBACK_REPLY, reply_for
from bakeoff.data.tickets import RECORD_FIELDS, generate_out_of_scope, generate_ticket_records
from bakeoff.errors import DataError

ONE_STRATUM = "all"  # the stratum of every item when the data has no label column
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


def check_records(records: list[dict], fields: list[str], path: Path, main: bool = True) -> list[str]:
    """Refuse what a record of strings cannot hold, and (in the main data file) a field that never has a
    value, which would score every model perfectly; warn about rows that say nothing. Returns the warnings."""
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
    if never and not main:  # a small test or validation file may lack a rare field
        warnings.append(f"{path.name}: never a value for {', '.join(never)}")
    elif never:
        raise DataError(
            f"{path}: field{'s' if len(never) > 1 else ''} {', '.join(f'`{f}`' for f in never)} never "
            f"{'has' if len(never) == 1 else 'have'} a value (null in every row), so every model would score "
            f"it perfectly; the records' keys are: {', '.join(found) or 'none (every record is empty)'}. "
            "Check `task.fields` against them"
        )
    empty = sum(all(record.get(f) in (None, "") for f in fields) for record in records)
    if empty:
        warnings.append(f"{path.name}: {empty} of {len(records)} records have no value for any field")
    extra = sorted(set(found) - set(fields))
    if extra:
        warnings.append(f"{path.name}: record keys not in `task.fields` are ignored: {', '.join(extra[:8])}")
    return warnings


def load_target_examples(path: Path, spec: TaskSpec, main: bool = True) -> tuple[Examples, list[str]]:
    """Texts, strata and targets from a user file, refusing missing columns and unreadable records by row;
    and warnings about what the file says oddly (see `check_records`; empty references dropped)."""
    data = spec.data
    frame = read_table(path, data.format)
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
            warnings.append(f"{path.name}: {len(blank)} rows with an empty reference dropped")
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


def _record(cell, path: Path, row: int) -> dict:
    if isinstance(cell, dict):
        return cell
    if cell is None or (isinstance(cell, float) and cell != cell) or str(cell).strip() == "":
        return {}  # no record: every field missing (null)
    try:
        value = json.loads(str(cell))
    except ValueError:
        raise DataError(
            f"{path}: data row {row + 1}: `task.data.target_column` is not a JSON object ({str(cell)[:60]}); "
            'write each target as {"field": "value", ...}'
        ) from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: data row {row + 1}: the target is JSON but not an object ({str(cell)[:60]})")
    return value


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
    paraphrases = None
    given_test = given_validation = None
    if spec.builtin is not None:
        everything = builtin_examples(spec, spec.builtin_examples, split.seed)
        paraphrases = builtin_examples(
            spec, max(50, round(spec.builtin_examples * split.test_fraction)), split.seed, phrasings="held_out"
        )
        if spec.type == "generation":
            out_of_scope = generate_out_of_scope(max(20, spec.builtin_examples // 10), seed=split.seed)
    else:
        data = spec.data
        everything, warnings = load_target_examples(data.path, spec)
        if data.test_path:
            given_test, found = load_target_examples(data.test_path, spec, main=False)
            warnings += found
        if data.validation_path:
            given_validation, found = load_target_examples(data.validation_path, spec, main=False)
            warnings += found
        if data.out_of_scope_path:
            out_of_scope = load_texts(data.out_of_scope_path, data)
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
    return TaskData(
        train_pool=train_pool,
        validation=validation,
        test=test,
        labels=sorted(known),
        out_of_scope=out_of_scope,
        report=validate.report(train_pool, validation, test, empty_dropped, warnings, labels_are_classes=False),
        test_near_duplicate=[bool(near[i]) or t.strip().lower() in seen for i, t in enumerate(test.texts)],
        paraphrases=paraphrases,
    )


def _known_strata(examples: Examples, known: set[str]) -> Examples:
    if set(examples.labels) <= known:
        return examples
    first = sorted(known)[0]
    labels = [label if label in known else first for label in examples.labels]
    return Examples(examples.texts, labels, examples.targets)
