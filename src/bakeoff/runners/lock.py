"""One driver per run folder: an OS-level lock held for as long as a `bakeoff run` uses the folder.

Two drivers on one folder would both run every unfinished trial (measured before this lock: 29 of 30
trials ran twice) and race on results.json. `fcntl.flock` is released by the kernel when the holder's
process dies, however it dies (kill -9 included), so a stale lock file never blocks a later run: only a
live process holds the lock. The file's text (PID, start time) is for the message only.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.run_folder import RunFolder


class RunFolderInUse(BakeoffError):
    """Another live process drives this run folder."""


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock for the duration of the block, or raise RunFolderInUse at once."""
    run_dir = Path(run_dir)
    path = RunFolder(run_dir).lock
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise BakeoffError(
            f"cannot write to the run folder {run_dir} ({err.strerror}); set `output.dir` to a writable folder"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
            pid, started = (holder + ["?", "?"])[:2]
            raise RunFolderInUse(
                f"run folder {run_dir} is in use by PID {pid} (started {started}); wait for that run to finish, "
                "stop it, or set `output.dir` to another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
