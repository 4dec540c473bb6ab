"""The body of one trial's Ray task: run the trial recipe on this worker and send back what the driver stores.

The worker never opens the results store (the driver is its only writer). Unless `output.shared` says
every node sees the run folder at the same path, the trial writes its files (predictions.npz, adapter) to
a scratch folder and they travel back through Ray with the record, as bytes; the driver puts them in the
run folder. The task data comes from Ray's object store (put once by the driver), so workers need
bakeoff installed, not the data files; a Hub model is fetched into each node's own cache on first use
(`models/hub.py`, under a per-node lock, so parallel trials on a node download it once).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bakeoff.config import RunSpec
from bakeoff.data.task import TaskData
from bakeoff.recipes.trial import TrialContext, TrialOutcome, run_trial
from bakeoff.run_folder import RunFolder
from bakeoff.runners.grid import Trial

REPORT_EVERY_S = 1.0  # a worker reports step and loss to the driver at most this often


@dataclass
class TrialResult:
    """What a trial's task returns to the driver."""

    outcome: TrialOutcome
    files: dict[str, bytes] = field(default_factory=dict)  # path inside the trial folder -> content; empty when shared
    node: str = ""
    trial_s: float = (
        0.0  # wall time of the trial inside the worker (the rest of the task's time is Ray's and the worker's start)
    )


class ProgressBoard:
    """A Ray actor (made by the driver) where workers post each running trial's step and loss."""

    def __init__(self) -> None:
        self.state: dict[str, dict] = {}

    def report(self, trial_id: str, state: dict) -> None:
        self.state[trial_id] = state

    def snapshot(self) -> dict[str, dict]:
        return dict(self.state)


def execute_trial(
    spec: RunSpec, task: TaskData, trial: Trial, subset_indices: list[int], cpus: float, board
) -> TrialResult:
    """Run on a Ray worker. `spec.run_dir` is absolute (the driver resolved it)."""
    import ray
    import torch
    from threadpoolctl import threadpool_limits

    from bakeoff.evaluation import perturb

    # Threads = the CPUs Ray gave this task, for torch and for numpy's BLAS (scikit-learn baselines). Ray sets
    # OMP_NUM_THREADS when it starts a worker, but a reused worker process keeps its first setting.
    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    perturb.load_plugins(spec.evaluation.plugins)  # user perturbations must exist in this process too
    device = "cuda" if ray.get_gpu_ids() else "cpu"
    subset = task.train_pool.subset(subset_indices)
    node = socket.gethostname()
    reporter = _Reporter(board, trial.trial_id, node)
    reporter.post(force=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bakeoff-trial-") as scratch:
        run_dir = spec.run_dir if spec.output.shared else Path(scratch)
        ctx = TrialContext(spec=spec, task=task, run_dir=run_dir, device=device, on_step=reporter.on_step)
        outcome = run_trial(trial, ctx, subset)
        trial_dir = RunFolder(run_dir).trial(trial.trial_id).path
        files = {} if spec.output.shared or outcome.error else _read_files(trial_dir)
    return TrialResult(outcome, files, node, time.perf_counter() - started)


class _Reporter:
    def __init__(self, board, trial_id: str, node: str) -> None:
        self.board, self.trial_id, self.node = board, trial_id, node
        self.step, self.loss, self.last_s = 0, None, 0.0

    def on_step(self, loss: float) -> None:
        self.step += 1
        self.loss = loss
        self.post()

    def post(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_s >= REPORT_EVERY_S:
            self.last_s = now
            self.board.report.remote(self.trial_id, {"step": self.step, "loss": self.loss, "node": self.node})


def _read_files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def write_files(trial_dir: Path, files: dict[str, bytes]) -> None:
    """On the driver: place a trial's returned files. Each top-level entry (predictions.npz, adapter/) is
    written beside its final name and then renamed over it, so a killed driver never leaves half a file."""
    incoming = trial_dir.parent / f".{trial_dir.name}.incoming"
    _remove(incoming)
    for relative, content in files.items():
        target = incoming / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    trial_dir.mkdir(parents=True, exist_ok=True)
    for entry in sorted(incoming.iterdir()) if incoming.exists() else []:
        final = trial_dir / entry.name
        _remove(final)
        os.replace(entry, final)
    _remove(incoming)


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
