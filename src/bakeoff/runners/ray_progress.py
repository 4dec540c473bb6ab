"""Progress of a Ray run on the driver: trials done / running / failed, and each running trial's step and loss.

On a terminal: a rich bar for the grid and one live line per running trial. Always: plain timestamped lines
in the run folder's `progress.log` (as the local runner writes), and on the console too when it is not a
terminal (a file or a CI log): one when a trial starts, finishes or fails, and at most one per trial every
`runner.progress_every_s` seconds while it trains, so a 45-trial run on a cluster does not flood the log.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bakeoff.runners.log_progress import ProgressLog

PLAIN_EVERY_S = 30.0


class RayProgress:
    def __init__(
        self, console: Console, total: int, already_done: int, run_dir: Path, every_s: float = PLAIN_EVERY_S
    ) -> None:
        self.console, self.total, self.every_s = console, total, every_s
        self.log = ProgressLog(console, run_dir, total, every_s)  # progress.log; the console when not a tty
        self.done, self.failed = already_done, 0
        self.rows: dict[str, int] = {}  # trial id -> rich task id (terminal)
        self.last_line_s: dict[str, float] = {}  # trial id -> when its last plain line was printed
        self.seen: dict[str, dict] = {}
        self.live = console.is_terminal
        if self.live:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self.overall = self.bar.add_task(self._counts(0), total=total, completed=already_done)
            self.bar.start()
        if already_done:
            self.log.line(f"{already_done} of {total} trials already done (skipped)")

    def _counts(self, running: int) -> str:
        return f"trials: {self.done} done, {running} running, {self.failed} failed"

    def refresh(self, board: dict[str, dict], in_flight: set[str]) -> None:
        """`board`: trial id -> {step, loss, node} as workers last reported; `in_flight`: submitted, not finished."""
        running = {trial_id: state for trial_id, state in board.items() if trial_id in in_flight}
        if self.live:
            self.bar.update(self.overall, description=self._counts(len(running)))
            for trial_id, state in running.items():
                if trial_id not in self.rows:
                    self.rows[trial_id] = self.bar.add_task("", total=None)
                self.bar.update(self.rows[trial_id], description=escape(f"  {trial_id} {_state_text(state)}"))
        now = time.monotonic()
        for trial_id, state in running.items():
            changed = state != self.seen.get(trial_id)
            first = trial_id not in self.last_line_s
            if changed and (first or now - self.last_line_s[trial_id] >= self.every_s):
                self.last_line_s[trial_id] = now
                verb = "started" if first else "running"
                self.log.line(f"{verb} {trial_id} {_state_text(state)} [{self._counts(len(running))}]")
            self.seen[trial_id] = state

    def finished(self, trial_id: str, error: str | None) -> None:
        if error is None:
            self.done += 1
        else:
            self.failed += 1
        if self.live:
            self.bar.advance(self.overall)
            if trial_id in self.rows:
                self.bar.remove_task(self.rows.pop(trial_id))
        if error is not None:
            if self.live:
                self.console.print(f"[red]{escape(trial_id)} failed:[/red] {escape(error)}", highlight=False)
            self.log.line(f"{trial_id} failed: {error} [{self.done} of {self.total} done, {self.failed} failed]")
        else:
            self.log.line(f"done {trial_id} [{self.done} of {self.total} done, {self.failed} failed]")

    def close(self) -> None:
        if self.live:
            self.bar.stop()


def _state_text(state: dict) -> str:
    where = f" on {state['node']}" if state.get("node") else ""
    if not state.get("step"):
        return f"(starting{where})"
    loss = f", loss {state['loss']:.3f}" if state.get("loss") is not None else ""
    return f"(step {state['step']}{loss}{where})"
