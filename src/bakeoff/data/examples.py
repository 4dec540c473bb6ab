"""The core data type every stage passes around: parallel lists of texts and labels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Examples:
    """Parallel lists of input texts and labels."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> Examples:
        return Examples([self.texts[i] for i in indices], [self.labels[i] for i in indices])
