"""The task-type registry (`bakeoff.tasks`): one place says each type's main metric, its direction, its metric
names and which perturbations keep its target."""

import re
from pathlib import Path

import pytest

from bakeoff import tasks
from bakeoff.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "bakeoff"


def test_each_task_type_names_its_main_metric_and_direction():
    assert set(tasks.REGISTRY) == {"classification", "extraction", "generation"}
    assert [tasks.main_metric(t) for t in ("classification", "extraction", "generation")] == [
        "macro_f1",
        "record_exact_match",
        "chrf",
    ]
    assert all(task.higher_is_better for task in tasks.REGISTRY.values())
    assert tasks.metric_label("macro_f1") == "macro-F1" and tasks.metric_label("judge_win_rate") == "judge win-rate"
    assert tasks.metric_label("new_metric") == "new metric"


def test_unknown_task_type_says_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown task type `extration` \(did you mean `extraction`\?\)"):
        tasks.get("extration")
    with pytest.raises(ConfigError, match="known: classification, extraction, generation"):
        tasks.get("ranking")


def test_extraction_skips_perturbations_that_rewrite_the_values_it_copies():
    extraction, generation = tasks.get("extraction"), tasks.get("generation")
    assert not extraction.keeps_target("entities") and not extraction.keeps_target("truncate")
    assert extraction.keeps_target("paraphrase")
    assert all(generation.keeps_target(name) for name in ("entities", "typos", "truncate", "paraphrase"))


def test_no_module_keeps_its_own_copy_of_the_main_metrics():
    """The table of main metrics once lived in four modules; now only bakeoff/tasks/ says it."""
    copies = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "tasks" not in path.parts and re.search(r"^(MAIN_METRIC|METRIC_LABELS)\s*=", path.read_text(), re.M)
    ]
    assert copies == []
