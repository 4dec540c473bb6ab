"""Ctrl-C during a run: stop at the next safe point, not wherever the signal lands.

The first Ctrl-C only sets a flag; the runner checks it after each training step, each scoring batch
and each trial, and stops there with `RunInterrupted`: the store is never mid-write and the trial in
progress stays `running`, so the next run redoes it. A second Ctrl-C stops at once (KeyboardInterrupt).
Raising KeyboardInterrupt from inside torch or a library at a random point (Python's default) could
also leave the exit status as "killed by SIGINT" instead of bakeoff's 130.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from rich.console import Console


class RunInterrupted(Exception):
    """The user pressed Ctrl-C; the run stopped at a safe point."""


class StopRequest:
    def __init__(self) -> None:
        self.requested = False

    def check(self) -> None:
        """Raise RunInterrupted if Ctrl-C was pressed since the run started."""
        if self.requested:
            raise RunInterrupted


@contextmanager
def stop_on_interrupt(console: Console):
    """Within the block, Ctrl-C requests a stop (see `StopRequest.check`); a second one interrupts at once."""
    request = StopRequest()
    if (
        threading.current_thread() is not threading.main_thread()
    ):  # signal handlers can only be set from the main thread
        yield request
        return

    def on_sigint(signum, frame):
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True
        console.print("\n[yellow]Ctrl-C: stopping at the next safe point (press again to stop now).[/yellow]")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
