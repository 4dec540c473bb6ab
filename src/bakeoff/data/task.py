"""Assemble a task from its spec: load or generate, validate, split. No model is involved."""

from __future__ import annotations

from dataclasses import dataclass

from bakeoff.config import TaskSpec
from bakeoff.data import validate
from bakeoff.data.load import keep_labels, load_examples
from bakeoff.data.splits import stratified_split
from bakeoff.data.tickets import Examples, generate_out_of_scope, generate_tickets


@dataclass(frozen=True)
class TaskData:
    """Everything a trial needs from the data side."""

    train_pool: Examples  # nested training subsets are drawn from this
    validation: Examples  # early stopping
    test: Examples
    labels: list[str]  # sorted; index = class id everywhere
    out_of_scope: list[str]  # items no label covers (may be empty)
    report: validate.DataReport


def prepare_task(spec: TaskSpec) -> TaskData:
    split = spec.split
    out_of_scope: list[str] = []
    if spec.builtin == "support-tickets":
        everything = generate_tickets(spec.builtin_examples, seed=split.seed)
        out_of_scope = generate_out_of_scope(max(20, spec.builtin_examples // 10), seed=split.seed)
        given_test = given_validation = None
    else:
        data = spec.data
        everything = load_examples(data.path, data)
        given_test = load_examples(data.test_path, data) if data.test_path else None
        given_validation = load_examples(data.validation_path, data) if data.validation_path else None
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
    return TaskData(
        train_pool=train_pool,
        validation=validation,
        test=test,
        labels=sorted(set(train_pool.labels)),
        out_of_scope=out_of_scope,
        report=validate.report(train_pool, validation, test, empty_dropped),
    )
