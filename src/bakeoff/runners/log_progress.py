"""Progress as plain timestamped lines: for a log file, CI or nohup, where a live progress bar shows nothing.

Every line goes to the run folder's `progress.log` (appended, so a resumed run continues it). When the
console is not a terminal the same lines go to it too; on a terminal the rich bars show progress instead.
Lines: trial start and end (with its duration and the run's ETA), each epoch's train and validation loss,
and, while a trial trains or scores, at most one line per `every_s` seconds (step and loss, items scored of
how many, in which evaluation phase).

The ETA adds up a prediction per trial left, from the finished trials of the same kind (candidate and method):
the nearest training size's duration, its fine-tune part scaled by the training size. A mean over all finished
trials said "ETA 5 s" with two minute-long LLM trials left (baselines run first and take a second). A kind not
timed yet has no prediction, so the ETA is then a lower bound and names the kinds it leaves out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from bakeoff.run_folder import RunFolder

EVERY_S = 30.0


def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


@dataclass(frozen=True)
class Timed:
    """A trial finished in this process: what predicts the trials left of its kind."""

    train_size: int
    seconds: float
    fine_tune_s: float  # the part that grows with the training size (0 for zero-shot)


def predict_s(train_size: int, timed: list[Timed]) -> float:
    """Seconds for a trial of `train_size`, from finished trials of its kind: the nearest size's duration,
    its fine-tune part scaled by the size ratio (fine-tuning runs epochs over the examples; scoring does not grow)."""
    near = min(timed, key=lambda t: (abs(t.train_size - train_size), -t.train_size))
    scale = train_size / near.train_size if near.train_size else 1.0
    return near.seconds - near.fine_tune_s + near.fine_tune_s * scale


class ProgressLog:
    def __init__(
        self,
        console: Console,
        run_dir: Path,
        total: int,
        every_s: float = EVERY_S,
        plan: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        """`plan`: trial id -> (kind, training size) for every trial of the run, for the ETA; without it, none."""
        self.console, self.total, self.every_s = console, total, every_s
        self.to_console = not console.is_terminal
        self.path = RunFolder(run_dir).progress_log
        self.finished = 0  # trials done or skipped
        self.pending = dict(plan or {})  # trials not finished or skipped yet
        self.has_plan = plan is not None
        self.timed: dict[str, list[Timed]] = {}  # kind -> trials of that kind finished in this process
        self.trial: str | None = None
        self.trial_started = self.last_line = 0.0
        self.steps = self.scored = 0
        self.phase, self.phase_items = "", 0

    def line(self, text: str) -> None:
        stamped = f"{timestamp()} {text}"
        with self.path.open("a", encoding="utf-8") as log:
            log.write(stamped + "\n")
        if self.to_console:
            self.console.print(stamped, markup=False, highlight=False, soft_wrap=True)

    def skipped(self, trial_id: str) -> None:
        self.finished += 1
        self.pending.pop(trial_id, None)
        self.line(f"skip {trial_id} (already done) [{self.finished}/{self.total}]")

    def start(self, trial_id: str) -> None:
        self.trial, self.steps, self.scored = trial_id, 0, 0
        # Before the evaluation's first phase a trial scores only to time itself (latency, batch sizes).
        self.phase, self.phase_items = "timing latency", 0
        self.trial_started = self.last_line = time.monotonic()
        self.line(f"start {trial_id} [{self.finished + 1}/{self.total}]")

    def end(self, error: str | None, fine_tune_s: float | None = None) -> None:
        """`fine_tune_s`: the trial's fine-tuning seconds, the part of it that scales with the training size."""
        seconds = time.monotonic() - self.trial_started
        self.finished += 1
        kind, size = self.pending.pop(self.trial, (None, 0))
        if kind is not None and not error:  # a failed trial's time predicts nothing
            self.timed.setdefault(kind, []).append(Timed(size, seconds, min(fine_tune_s or 0.0, seconds)))
        eta = self.eta_text()
        verb = f"failed ({error})" if error else "done"
        self.line(f"{verb} {self.trial} in {duration_text(seconds)} [{self.finished}/{self.total}{eta and ', '}{eta}]")

    def eta_text(self) -> str:
        """The ETA text: "ETA 3 min 10 s"; "ETA over 40 s (not timed yet: gemma3 lora)" while kinds left have not
        run; "" with no plan or nothing left."""
        if not self.has_plan or not self.pending:
            return ""
        known_s, untimed = 0.0, []
        for kind, size in self.pending.values():
            if kind in self.timed:
                known_s += predict_s(size, self.timed[kind])
            elif kind not in untimed:
                untimed.append(kind)
        if not untimed:
            return f"ETA {duration_text(known_s)}"
        kinds = ", ".join(untimed[:3]) + (f" and {len(untimed) - 3} more" if len(untimed) > 3 else "")
        return (
            f"ETA over {duration_text(known_s)} (not timed yet: {kinds})"
            if known_s
            else f"no ETA yet ({kinds} not timed yet)"
        )

    def step(self, loss: float) -> None:
        self.steps += 1
        if self._due():
            self.line(f"  {self.trial} train step {self.steps}, loss {loss:.4f}")

    def epoch(self, epoch: int, train_loss: float, validation_loss: float) -> None:
        self.last_line = time.monotonic()
        self.line(f"  {self.trial} epoch {epoch}: train loss {train_loss:.4f}, validation loss {validation_loss:.4f}")

    def scoring_phase(self, phase: str, items: int) -> None:
        """The trial starts scoring `items` items of an evaluation phase (test, train subset, perturbed, ...)."""
        self.phase, self.phase_items, self.scored = phase, items, 0

    def scoring(self, items: int) -> None:
        self.scored += items
        if self._due():
            of = f" of {self.phase_items}" if self.phase_items else ""
            items = "item" if self.scored == 1 and not of else "items"
            self.line(f"  {self.trial} scored {self.scored}{of} {items} ({self.phase})")

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self.last_line < self.every_s:
            return False
        self.last_line = now
        return True
