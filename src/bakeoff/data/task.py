"""Assemble a task from its spec: load or generate, validate, split. No model is involved."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, replace

from bakeoff.config import TaskSpec
from bakeoff.data import validate
from bakeoff.data.examples import Examples
from bakeoff.data.load import keep_labels, load_examples, load_texts, normalise_labels, table_to_examples
from bakeoff.data.splits import held_out_splits
from bakeoff.data.tickets import generate_out_of_scope, generate_tickets
from bakeoff.errors import DataError


@dataclass(frozen=True)
class TaskData:
    """Everything a trial needs from the data side."""

    train_pool: Examples  # nested training subsets are drawn from this
    validation: Examples  # early stopping
    test: Examples
    labels: list[str]  # sorted; index = class id everywhere
    out_of_scope: list[str]  # items no label covers (may be empty)
    report: validate.DataReport
    test_near_duplicate: list[bool]  # per test item: exact or near duplicate of a training-pool item
    paraphrases: Examples | None = None  # built-in task: test-sized set in phrasings never used in training

    def fingerprint(self) -> str:
        """Hash of the prepared data (every split's texts, labels and targets, the label set, out-of-scope
        items): a run folder's trials hold only while this is unchanged, whatever the config says (an edited
        data file at the same path, a new Hub revision, another generator)."""
        splits = {
            "labels": self.labels,
            "out_of_scope": self.out_of_scope,
            **{
                name: None if part is None else [part.texts, part.labels, part.targets]
                for name, part in (
                    ("train_pool", self.train_pool),
                    ("validation", self.validation),
                    ("test", self.test),
                    ("paraphrases", self.paraphrases),
                )
            },
        }
        return hashlib.sha256(json.dumps(splits, ensure_ascii=False).encode()).hexdigest()[:16]


def prepare_task(spec: TaskSpec) -> TaskData:
    if spec.type != "classification":
        from bakeoff.data.targets import prepare_target_task

        return prepare_target_task(spec)  # items with target outputs; labels only stratify
    split = spec.split
    out_of_scope: list[str] = []
    warnings: list[str] = []
    hub_source = None
    if spec.builtin == "support-tickets":
        everything = generate_tickets(spec.builtin_examples, seed=split.seed)
        out_of_scope = generate_out_of_scope(max(20, spec.builtin_examples // 10), seed=split.seed)
        given_test = given_validation = None
        paraphrases = generate_tickets(
            max(50, round(spec.builtin_examples * split.test_fraction)), seed=split.seed, phrasings="held_out"
        )
    else:
        data = spec.data
        given_test = given_validation = None
        if data.hub is not None:
            everything, given_test, given_validation, hub_source, found = load_hub_splits(data)
            warnings += found
        else:
            everything, found = load_examples(data.path, data)
            warnings += found
            if data.test_path:
                given_test, found = load_examples(data.test_path, data)
                warnings += found
            if data.validation_path:
                given_validation, found = load_examples(data.validation_path, data)
                warnings += found
        paraphrases = None
        if data.out_of_scope_path:
            out_of_scope = load_texts(data.out_of_scope_path, data)
        if data.out_of_scope_labels:
            check_out_of_scope_labels(data.out_of_scope_labels, everything, given_test)
            everything, held_out = split_out_labels(everything, data.out_of_scope_labels)
            out_of_scope += held_out
            if given_test is not None:
                given_test, test_held_out = split_out_labels(given_test, data.out_of_scope_labels)
                out_of_scope += test_held_out
            if given_validation is not None:
                given_validation, _ = split_out_labels(given_validation, data.out_of_scope_labels)
            if not everything.labels:
                raise DataError(
                    "`task.data.out_of_scope_labels` covers every label of the training data: nothing is "
                    "left to "
                    "train on; list only the labels that should stay unseen"
                )
        everything = keep_labels(everything, data.labels, data.max_per_label, split.seed)
        if given_test is not None:
            given_test = keep_labels(given_test, data.labels, None, split.seed)
        if given_validation is not None:
            given_validation = keep_labels(given_validation, data.labels, None, split.seed)

    everything, empty_dropped = validate.drop_empty(everything)
    validate.check_labels(everything, "training data", 1 + (given_test is None) + (given_validation is None))
    train_pool, validation, test, dropped = held_out_splits(everything, given_test, given_validation, split)
    empty_dropped += dropped
    if given_validation is not None:
        validate.check_held_out_labels(train_pool, validation, "validation")
    validate.check_held_out_labels(train_pool, test, "test")
    near = validate.near_duplicate_mask(train_pool.texts, test.texts)
    seen = {t.strip().lower() for t in train_pool.texts}
    test_near_duplicate = [bool(near[i]) or t.strip().lower() in seen for i, t in enumerate(test.texts)]
    data_report = validate.report(train_pool, validation, test, empty_dropped, warnings)
    return TaskData(
        train_pool=train_pool,
        validation=validation,
        test=test,
        labels=sorted(set(train_pool.labels)),
        out_of_scope=out_of_scope,
        report=replace(data_report, hub=hub_source) if hub_source else data_report,
        test_near_duplicate=test_near_duplicate,
        paraphrases=paraphrases,
    )


def check_out_of_scope_labels(wanted: list[str], train: Examples, test: Examples | None) -> None:
    """Every out-of-scope label must occur in the data: a typo would quietly train on that class."""
    present = set(train.labels) | set(test.labels if test is not None else [])
    unknown = [label for label in wanted if label not in present]
    if unknown:
        hints = [
            f"{label!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(label, present, n=1))
            else repr(label)
            for label in unknown
        ]
        raise DataError(f"`task.data.out_of_scope_labels`: {', '.join(hints)} not found in the data's labels")


def split_out_labels(examples: Examples, labels: list[str]) -> tuple[Examples, list[str]]:
    """(examples without these labels, texts of the examples with them)."""
    wanted = set(labels)
    keep = [i for i, label in enumerate(examples.labels) if label not in wanted]
    return examples.subset(keep), [examples.texts[i] for i, label in enumerate(examples.labels) if label in wanted]


def load_hub_splits(data) -> tuple[Examples, Examples | None, Examples | None, dict, list[str]]:
    """`task.data.hub`: the training split and the optional test/validation splits, with the same column
    checks as files, and what to record (id, config, splits, revision asked for, commit read)."""
    from bakeoff.data.hub import load_split, source_record

    loaded, warnings, commits = [], [], set()
    for name in (data.split, data.test_split, data.validation_split):
        if name is None:
            loaded.append(None)
            continue
        part = load_split(data, name)
        examples, found = normalise_labels(table_to_examples(part.frame, data, part.where), part.where)
        loaded.append(examples)
        warnings += found
        commits.add(part.commit_sha)
    return loaded[0], loaded[1], loaded[2], source_record(data, commits), warnings
