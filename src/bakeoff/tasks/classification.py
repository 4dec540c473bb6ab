"""Classification: one label per text from a fixed set; quality is macro-F1 on the test set."""

from bakeoff.tasks.base import TaskType

CLASSIFICATION = TaskType(
    name="classification",
    main_metric="macro_f1",
    higher_is_better=True,
    metric_labels={"macro_f1": "macro-F1", "accuracy": "accuracy"},
)
