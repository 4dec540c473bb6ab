"""The core data type every stage passes around: parallel lists of texts and labels (and, for extraction and
generation tasks, target outputs: there the labels are only strata for splits, e.g. the ticket category)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Examples:
    """Parallel lists of input texts and labels."""

    texts: list[str]
    labels: list[str]
    targets: list[str] | None = None  # extraction: compact JSON records; generation: reference outputs

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> Examples:
        indices = list(indices)
        targets = None if self.targets is None else [self.targets[i] for i in indices]
        return Examples([self.texts[i] for i in indices], [self.labels[i] for i in indices], targets)
