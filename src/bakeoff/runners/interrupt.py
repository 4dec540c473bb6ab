"""Ctrl-C during a run: stop at the next safe point, not wherever the signal lands.

The first Ctrl-C only sets a flag; the runner checks it after each training step, each scoring batch
and each trial, and stops there with `RunInterrupted`: the store is never mid-write and the trial in
progress stays `running`, so the next run redoes it. A second Ctrl-C stops at once (KeyboardInterrupt).
Raising KeyboardInterrupt from inside torch or a library at a random point (Python's default) could
also leave the exit status as "killed by SIGINT" instead of bakeoff's 130.

SIGTERM (a scheduler, `kill`, a container stop) does the same as Ctrl-C, and the exit status is 143: a run
stopped that way used to die wherever the signal landed, or not at all while Ray held the default handler.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from rich.console import Console


class RunInterrupted(Exception):
    """The user pressed Ctrl-C (or the process got SIGTERM); the run stopped at a safe point."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class StopNow(KeyboardInterrupt):
    """A second Ctrl-C or SIGTERM: stop at once, wherever the run is (its exit status still names the signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


class StopRequest:
    def __init__(self) -> None:
        self.requested = False
        self.signum = signal.SIGINT

    def check(self) -> None:
        """Raise RunInterrupted if Ctrl-C was pressed (or SIGTERM came) since the run started."""
        if self.requested:
            raise RunInterrupted(self.signum)


@contextmanager
def stop_on_interrupt(console: Console):
    """Within the block, Ctrl-C requests a stop (see `StopRequest.check`); a second one interrupts at once."""
    request = StopRequest()
    if (
        threading.current_thread() is not threading.main_thread()
    ):  # signal handlers can only be set from the main thread
        yield request
        return

    def on_signal(signum, frame):
        if request.requested:
            raise StopNow(signum)
        request.requested, request.signum = True, signum
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        again = "press again" if signum == signal.SIGINT else "send it again"
        console.print(f"\n[yellow]{what}: stopping at the next safe point ({again} to stop now).[/yellow]")

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
