"""A full disk while a trial writes: one resumable error, whichever runner was storing it."""

from __future__ import annotations

import errno
from pathlib import Path

from bakeoff.errors import BakeoffError


def raise_if_disk_full(err: OSError, trial_id: str, where: Path) -> None:
    """Turn ENOSPC/EDQUOT into a BakeoffError that says how to resume; any other OSError is left to the caller.

    The trial stays `running` in the store, so the same command run again redoes it; finished trials and the
    store itself are untouched (its writes are transactions)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        raise BakeoffError(
            f"disk full while {trial_id} was writing ({err.filename or where}); "
            "free some space and run the same command again to resume"
        ) from None
