"""`DecisionInputs`: the typed answers the decision runs on (no torch, no dicts).

The config's `decision:` section (`DecisionSpec`, validated with its defaults, so run folders written
before a setting existed still rebuild) plus what the run itself settles: the task type, and
`task_specificity: auto` resolved from it. Frozen: a what-if is a copy with one answer changed (`but`).
"""

from __future__ import annotations

from typing import Literal

from bakeoff.config import DecisionSpec


def specificity(answer: str, task_type: str) -> str:
    """`decision.task_specificity`: `auto` follows task.type (generation is open-ended; classification and
    extraction, with a fixed answer space, are narrow); an explicit answer wins."""
    if answer != "auto":
        return answer
    return "open-ended" if task_type == "generation" else "narrow"


class DecisionInputs(DecisionSpec):
    task_type: Literal["classification", "extraction", "generation"] = "classification"

    @classmethod
    def of(cls, answers: dict | None, task_type: str) -> DecisionInputs:
        """The stored `decision:` answers, with defaults, for a run of `task_type`."""
        given = DecisionSpec.model_validate(answers or {})
        resolved = specificity(given.task_specificity, task_type)
        return cls.model_validate(given.model_dump() | {"task_type": task_type, "task_specificity": resolved})

    def but(self, **changes) -> DecisionInputs:
        """The same answers with `changes` (validated: a what-if is held to the config's bounds)."""
        return DecisionInputs.model_validate(self.model_dump() | changes)


def merged(current: dict, answers: dict) -> dict:
    """`answers` over `current`, nested sections merged key by key: `costs: {review: 2.5}` changes the review
    cost and keeps the error cost (a plain `|` would drop it). A None answer removes the setting."""
    out = dict(current)
    for key, value in answers.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
