"""Perturbations for tests/test_ray_runner.py that act only inside a Ray worker (the driver's preflight probe
applies every perturbation once; there they do nothing).

`kill_worker` SIGKILLs the worker running a given trial a given number of times (`kills: "tfidf/n20/s0=1"`),
counting kills in marker files, so "die on the first attempt, then work" holds across worker processes.
`pause_in_worker` sleeps per item, so a test can count on a trial taking a while.
"""

import os
import signal
import time
from pathlib import Path

from bakeoff.evaluation.perturb import register


def _current_trial() -> str | None:
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    name = ray.get_runtime_context().get_task_name() or ""  # the runner names each task "bakeoff <trial id>"
    return name.removeprefix("bakeoff ")


@register("kill_worker")
def kill_worker(text, rng, marker: str = "", kills: str = ""):
    trial = _current_trial()
    times = dict(item.split("=") for item in kills.split(";") if item).get(trial or "", 0)
    for n in range(1, int(times) + 1):
        mark = Path(f"{marker}.{trial.replace('/', '__')}.{n}")
        if not mark.exists():
            mark.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return text


@register("pause_in_worker")
def pause_in_worker(text, rng, seconds: float = 0.0):
    if _current_trial() is not None:
        time.sleep(seconds)
    return text
