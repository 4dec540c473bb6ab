"""What a task type declares about itself: its main metric and which way is better, how its metrics are
named in reports, and which perturbations leave its target unchanged.

One module per task type (`classification.py`, `extraction.py`, `generation.py`) defines a `TaskType`;
`bakeoff.tasks.get(name)` finds it. Pure Python: the evaluation, the decision and the report all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskType:
    name: str
    main_metric: str  # the key quality is read in: learning curves, ties, the decision and the report use it
    higher_is_better: bool
    metric_labels: dict[str, str] = field(default_factory=dict)  # metric key -> name shown in reports
    # Perturbations after which the stored target no longer holds (the item is not scored under them).
    changes_target: frozenset[str] = frozenset()

    def label(self, metric: str | None = None) -> str:
        """The name reports show for `metric` (default: the main metric)."""
        metric = metric or self.main_metric
        return self.metric_labels.get(metric, metric.replace("_", " "))

    def keeps_target(self, perturbation: str) -> bool:
        return perturbation not in self.changes_target
