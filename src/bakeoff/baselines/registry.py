"""The classical baselines, by name: which task types each serves, and where its class lives.

Every baseline is one module with one class behind the same interface (`Baseline` below), and one entry
here. Config validation, preflight, the recipes and `bakeoff serve` look a baseline up by its `model:`
name and never test names in if-chains, so a new baseline is its module plus one `register` line.

Lazy, like lm-evaluation-harness's registry: an entry names its class as "module:Class" and the module is
imported on first use. Validating a config needs only names and task types, and importing scikit-learn
costs ~2.7 s, which every `bakeoff report` or `validate` would otherwise pay.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bakeoff.errors import ConfigError

if TYPE_CHECKING:
    from bakeoff.data.examples import Examples


@dataclass(frozen=True)
class BaselineSetup:
    """What a baseline is built from: the task it is fitted for and the trial's seed."""

    task_type: str  # classification | extraction | generation
    seed: int
    labels: tuple[str, ...] = ()  # classification: the task's full label list (probabilities cover all of it)
    fields: tuple[str, ...] = ()  # extraction: the record's fields, in order


class Baseline(Protocol):
    """One fitted (or fittable) baseline. Both recipes and serving use only this.

    `predict(texts)` is what the evaluation suite is handed: for classification
    (probabilities [N, K], logits [N, K]) over the task's labels; for extraction and generation one output
    string per text (a compact JSON record, a reply). Classification baselines also have
    `predict_proba(texts) -> [N, K]`, what `bakeoff serve` answers with and the latency is measured on.
    `state()` is what a trial saves for serving (`baseline.joblib`, with the name) and `from_state` reads back.
    """

    # Why its score on its own training items means nothing (None: it means what it says). The memorization
    # flag reads "n/a" with this note instead of flagging a lookup that scores 100% by construction.
    train_score_note: ClassVar[str | None]

    @classmethod
    def build(cls, setup: BaselineSetup) -> Baseline: ...

    def fit(self, train: Examples) -> Baseline: ...

    def predict(self, texts: list[str]) -> Any: ...

    def state(self) -> dict: ...

    @classmethod
    def from_state(cls, state: dict) -> Baseline: ...


@dataclass(frozen=True)
class BaselineEntry:
    """A registered baseline: its `model:` name, the task types it serves, and its class.

    `target` is the class itself or "module:Class", imported on first `load()`."""

    name: str
    task_types: tuple[str, ...]
    target: str | type = field(repr=False)

    def load(self) -> type[Baseline]:
        if not isinstance(self.target, str):
            return self.target
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def serves(self, task_type: str) -> bool:
        return task_type in self.task_types

    def build(self, setup: BaselineSetup) -> Baseline:
        return self.load().build(setup)

    def restore(self, state: dict) -> Baseline:
        return self.load().from_state(state)


_REGISTRY: dict[str, BaselineEntry] = {}


def register(entry: BaselineEntry) -> BaselineEntry:
    """Add a baseline; a name already taken is refused (a second `crf` would silently shadow the first)."""
    if entry.name in _REGISTRY:
        raise ValueError(f"baseline `{entry.name}` is already registered")
    if not entry.task_types:
        raise ValueError(f"baseline `{entry.name}` serves no task type")
    _REGISTRY[entry.name] = entry
    return entry


def is_baseline(name: str) -> bool:
    return name in _REGISTRY


def baseline_names(task_type: str | None = None) -> list[str]:
    """Registered names (those serving `task_type`, if given), in registration order."""
    return [name for name, entry in _REGISTRY.items() if task_type is None or entry.serves(task_type)]


def lookup(name: str) -> BaselineEntry:
    """The entry for `name`; an unknown name is the user's error, with "did you mean"."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = similar_baselines(name)
    hint = f"did you mean `{close[0]}`? " if close else ""
    raise ConfigError(f"unknown baseline `{name}`: {hint}(baselines: {', '.join(_REGISTRY)})")


def similar_baselines(name: str) -> list[str]:
    """Registered names that `name` is probably a typo of, nearest first (empty when none is near)."""
    from bakeoff.models.sources import closest_names  # difflib + edit distance, as for short model names

    return closest_names(name, list(_REGISTRY))


register(BaselineEntry("tfidf-logreg", ("classification",), "bakeoff.baselines.classical:TfidfLogreg"))
register(BaselineEntry("minilm-logreg", ("classification",), "bakeoff.baselines.classical:MinilmLogreg"))
register(BaselineEntry("crf", ("extraction",), "bakeoff.baselines.extraction_crf:CrfExtractor"))
register(BaselineEntry("tfidf-retrieval", ("generation",), "bakeoff.baselines.retrieval:TfidfRetriever"))
