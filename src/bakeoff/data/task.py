"""Assemble a task from its spec: load or generate, validate, split. No model is involved."""

from __future__ import annotations

from dataclasses import dataclass

from bakeoff.config import TaskSpec
from bakeoff.data import validate
from bakeoff.data.load import keep_labels, load_examples, load_texts
from bakeoff.data.splits import stratified_split
from bakeoff.data.tickets import Examples, generate_out_of_scope, generate_tickets
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


def prepare_task(spec: TaskSpec) -> TaskData:
    split = spec.split
    out_of_scope: list[str] = []
    if spec.builtin == "support-tickets":
        everything = generate_tickets(spec.builtin_examples, seed=split.seed)
        out_of_scope = generate_out_of_scope(max(20, spec.builtin_examples // 10), seed=split.seed)
        given_test = given_validation = None
        paraphrases = generate_tickets(max(50, round(spec.builtin_examples * split.test_fraction)), seed=split.seed, phrasings="held_out")
    else:
        data = spec.data
        everything = load_examples(data.path, data)
        given_test = load_examples(data.test_path, data) if data.test_path else None
        given_validation = load_examples(data.validation_path, data) if data.validation_path else None
        paraphrases = None
        if data.out_of_scope_path:
            out_of_scope = load_texts(data.out_of_scope_path, data)
        if data.out_of_scope_labels:
            everything, held_out = split_out_labels(everything, data.out_of_scope_labels)
            out_of_scope += held_out
            if given_test is not None:
                given_test, test_held_out = split_out_labels(given_test, data.out_of_scope_labels)
                out_of_scope += test_held_out
        everything = keep_labels(everything, data.labels, data.max_per_label, split.seed)
        if given_test is not None:
            given_test = keep_labels(given_test, data.labels, None, split.seed)
        if given_validation is not None:
            given_validation = keep_labels(given_validation, data.labels, None, split.seed)

    everything, empty_dropped = validate.drop_empty(everything)
    validate.check_labels(everything, "training data")
    if given_test is None:
        pool, test = stratified_split(everything, split.test_fraction, split.seed, "test")
    else:
        test, dropped = validate.drop_empty(given_test)
        empty_dropped += dropped
        pool = everything
    if given_validation is None:
        train_pool, validation = stratified_split(pool, split.validation_fraction, split.seed + 1, "validation")
    else:
        train_pool, validation = pool, given_validation
    validate.check_test_labels(train_pool, test)
    near = validate.near_duplicate_mask(train_pool.texts, test.texts)
    seen = {t.strip().lower() for t in train_pool.texts}
    test_near_duplicate = [bool(near[i]) or t.strip().lower() in seen for i, t in enumerate(test.texts)]
    return TaskData(
        train_pool=train_pool,
        validation=validation,
        test=test,
        labels=sorted(set(train_pool.labels)),
        out_of_scope=out_of_scope,
        report=validate.report(train_pool, validation, test, empty_dropped),
        test_near_duplicate=test_near_duplicate,
        paraphrases=paraphrases,
    )


def split_out_labels(examples: Examples, labels: list[str]) -> tuple[Examples, list[str]]:
    """(examples without these labels, texts of the examples with them)."""
    unknown = set(labels) - set(examples.labels)
    if unknown == set(labels):
        raise DataError(f"`task.data.out_of_scope_labels`: none of {sorted(labels)} occurs in the data")
    wanted = set(labels)
    keep = [i for i, label in enumerate(examples.labels) if label not in wanted]
    return examples.subset(keep), [examples.texts[i] for i, label in enumerate(examples.labels) if label in wanted]
