"""The trial grid: candidate x training size x seed, in the order they run."""

from __future__ import annotations

from dataclasses import dataclass

from bakeoff.config import CandidateSpec, RunSpec


@dataclass(frozen=True)
class Trial:
    candidate: CandidateSpec
    train_size: int  # 0 for zero-shot
    seed: int

    def __hash__(self) -> int:
        # By its id, unique within a grid: the candidate spec holds lists (`train_sizes`), which do not hash.
        return hash(self.trial_id)

    @property
    def method(self) -> str:
        return self.candidate.resolved_method

    @property
    def trial_id(self) -> str:
        return f"{self.candidate.name}/n{self.train_size}/s{self.seed}"


def expand_grid(spec: RunSpec) -> list[Trial]:
    """All trials; cheap baselines first so a long run shows early results. Zero-shot runs once per seed."""
    trials = []
    for candidate in sorted(spec.candidates, key=lambda c: not c.is_baseline):
        sizes = (
            [0]
            if candidate.resolved_method == "zero-shot"
            else [
                size for size in spec.grid.train_sizes if candidate.train_sizes is None or size in candidate.train_sizes
            ]
        )
        for size in sizes:
            for seed in spec.grid.seeds:
                trials.append(Trial(candidate, size, seed))
    return trials
