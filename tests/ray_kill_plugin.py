"""A perturbation for tests/test_ray_runner.py that SIGKILLs the Ray worker applying it, a given number of times.

It counts kills in marker files (`marker`.1, `marker`.2 ...), so "die on the first attempt, then work" is
deterministic across worker processes. Outside a Ray worker (the driver's preflight probe) it does nothing.
"""

import os
import signal
from pathlib import Path

from bakeoff.evaluation.perturb import register


def _in_ray_worker() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE


@register("kill_worker")
def kill_worker(text, rng, marker: str = "", times: int = 1):
    if marker and _in_ray_worker():
        for n in range(1, int(times) + 1):
            mark = Path(f"{marker}.{n}")
            if not mark.exists():
                mark.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
    return text
