"""Progress as plain timestamped lines: for a log file, CI or nohup, where a live progress bar shows nothing.

Every line goes to the run folder's `progress.log` (appended, so a resumed run continues it). When the
console is not a terminal the same lines go to it too; on a terminal the rich bars show progress instead.
Lines: trial start and end (with its duration and the run's ETA), each epoch's train and validation loss,
and, while a trial trains or scores, at most one line per `every_s` seconds (step and loss, items scored).
The ETA is the mean duration of the trials finished in this process times the trials left: a rough guide,
since LLM trials take far longer than baselines.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

EVERY_S = 30.0
LOG_NAME = "progress.log"


def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class ProgressLog:
    def __init__(self, console: Console, run_dir: Path, total: int, every_s: float = EVERY_S) -> None:
        self.console, self.total, self.every_s = console, total, every_s
        self.to_console = not console.is_terminal
        self.path = run_dir / LOG_NAME
        self.finished = 0  # trials done or skipped
        self.durations_s: list[float] = []  # trials run in this process
        self.trial: str | None = None
        self.trial_started = self.last_line = 0.0
        self.steps = self.scored = 0

    def line(self, text: str) -> None:
        stamped = f"{timestamp()} {text}"
        with self.path.open("a", encoding="utf-8") as log:
            log.write(stamped + "\n")
        if self.to_console:
            self.console.print(stamped, markup=False, highlight=False, soft_wrap=True)

    def skipped(self, trial_id: str) -> None:
        self.finished += 1
        self.line(f"skip {trial_id} (already done) [{self.finished}/{self.total}]")

    def start(self, trial_id: str) -> None:
        self.trial, self.steps, self.scored = trial_id, 0, 0
        self.trial_started = self.last_line = time.monotonic()
        self.line(f"start {trial_id} [{self.finished + 1}/{self.total}]")

    def end(self, error: str | None) -> None:
        seconds = time.monotonic() - self.trial_started
        self.finished += 1
        self.durations_s.append(seconds)
        left = self.total - self.finished
        eta = f", ETA {duration_text(left * sum(self.durations_s) / len(self.durations_s))}" if left else ""
        verb = f"failed ({error})" if error else "done"
        self.line(f"{verb} {self.trial} in {duration_text(seconds)} [{self.finished}/{self.total}{eta}]")

    def step(self, loss: float) -> None:
        self.steps += 1
        if self._due():
            self.line(f"  {self.trial} train step {self.steps}, loss {loss:.4f}")

    def epoch(self, epoch: int, train_loss: float, validation_loss: float) -> None:
        self.last_line = time.monotonic()
        self.line(f"  {self.trial} epoch {epoch}: train loss {train_loss:.4f}, validation loss {validation_loss:.4f}")

    def scoring(self, items: int) -> None:
        self.scored += items
        if self._due():
            self.line(f"  {self.trial} scored {self.scored} items")

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self.last_line < self.every_s:
            return False
        self.last_line = now
        return True
