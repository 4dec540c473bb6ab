"""Extraction: a JSON record of declared fields per text; quality is the share of records exactly right."""

from bakeoff.tasks.base import TaskType

EXTRACTION = TaskType(
    name="extraction",
    main_metric="record_exact_match",
    higher_is_better=True,
    metric_labels={"record_exact_match": "record exact match", "field_f1": "field F1"},
    # These change the very values a record copies (names and amounts swapped, letters of an order number
    # changed, its case changed, or cut off the end): the target would no longer hold.
    changes_target=frozenset({"entities", "typos", "lowercase", "uppercase", "truncate"}),
)
