"""The task types bakeoff runs, behind one registry: `get("extraction").main_metric`.

A new task type is one module defining a `TaskType` plus its entry in `REGISTRY`.
"""

from __future__ import annotations

import difflib

from bakeoff.errors import ConfigError
from bakeoff.tasks.base import TaskType
from bakeoff.tasks.classification import CLASSIFICATION
from bakeoff.tasks.extraction import EXTRACTION
from bakeoff.tasks.generation import GENERATION

REGISTRY: dict[str, TaskType] = {task.name: task for task in (CLASSIFICATION, EXTRACTION, GENERATION)}


def get(name: str) -> TaskType:
    """The task type called `name`; an unknown name fails with the nearest known one."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        raise ConfigError(f"unknown task type `{name}`{hint}; known: {', '.join(REGISTRY)}") from None


def main_metric(name: str) -> str:
    return get(name).main_metric


def metric_label(metric: str) -> str:
    """How reports name a metric key of any task type (`macro_f1` -> "macro-F1")."""
    for task in REGISTRY.values():
        if metric in task.metric_labels:
            return task.metric_labels[metric]
    return metric.replace("_", " ")


__all__ = ["REGISTRY", "TaskType", "get", "main_metric", "metric_label"]
