"""Run a spec's trial grid on a Ray cluster: each trial one Ray task with the resources it needs.

Ray does the scheduling (placement by GPUs/CPUs/memory, queueing, several trials at once, retrying a
task whose worker or node died); bakeoff declares each task's resources, refuses a trial no node could
ever hold before anything starts, and keeps the driver the only writer of the results store. The trial
recipe is the local runner's (`trials.run_trial`), so both runners store the same records.

Resume works as locally: a trial is `running` in the store from submission until its result is stored,
so a driver killed at any point leaves `done` trials done and a re-run redoes the rest. Ctrl-C cancels
the in-flight tasks and exits 130 with the resume hint.

`ray` is imported only here and in the worker, and only when `runner.kind` is `ray`: `bakeoff --help`
and the local runner never import it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bakeoff.config import RunnerSpec, RunSpec
from bakeoff.data.splits import nested_subsets
from bakeoff.data.task import TaskData
from bakeoff.errors import BakeoffError
from bakeoff.run_folder import RunFolder
from bakeoff.runners.disk import raise_if_disk_full
from bakeoff.runners.grid import Trial, expand_grid
from bakeoff.runners.interrupt import RunInterrupted, stop_on_interrupt
from bakeoff.runners.local import RunOutcome, run_metadata
from bakeoff.runners.preflight import preflight
from bakeoff.runners.ray_progress import RayProgress
from bakeoff.runners.resources import TrialResources, cluster_gpu, nodes_from_ray, refuse_unplaceable, trial_resources
from bakeoff.store import ResultStore
from bakeoff.tracking.live import track_trial

# No square brackets (`bakeoff[ray]`): the CLI prints errors as rich markup, which would swallow `[ray]`.
INSTALL_HINT = "`--runner ray` needs Ray, bakeoff's `ray` extra: pip install ray==2.60.0 (or use `--runner local`)"
MAX_RETRIES = 1  # a task whose worker or node died runs once more, elsewhere if Ray can; then it is stored as failed
POLL_S = 0.5  # how often the driver checks for Ctrl-C and refreshes progress while waiting


def import_ray():
    try:
        import ray
    except ImportError:
        raise BakeoffError(INSTALL_HINT) from None
    return ray


@contextmanager
def ray_session(ray, runner: RunnerSpec, console: Console):
    """Join the cluster at `runner.address`, or start Ray on this machine; reuse a Ray this process already
    joined (a notebook, the tests). Disconnects (and stops a Ray it started) on the way out."""
    if ray.is_initialized():
        yield
        return
    temp_dir = None
    try:
        if runner.address is None:
            os.environ.setdefault(
                "RAY_AUTH_MODE", "disabled"
            )  # a private instance on this machine, reachable only from here
            _absolute_pythonpath()
            # Ray puts unix sockets under its temp folder; their paths must stay under ~107 bytes.
            temp_dir = tempfile.mkdtemp(prefix="bkray-", dir="/tmp")
            ray.init(_temp_dir=temp_dir, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            probe_head(runner.address, runner.connect_timeout_s)
            ray.init(address=runner.address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BakeoffError(
            f"cannot reach the Ray cluster at `{runner.address}` ({first_line}); start one with `ray "
            "start --head`, "
            "or fix `runner.address` / `--ray-address`"
        ) from None
    where = runner.address or "a new Ray instance on this machine"
    console.print(f"ray: connected to {where} ({_cluster_summary(ray)})", markup=False, highlight=False)
    try:
        yield
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def head_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a `host:port` or `ray://host:port` address; None for `auto` / `local` (found by Ray)."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d{1,5})/?", address.strip())
    return (match.group(1), int(match.group(2))) if match else None


def probe_head(address: str, timeout_s: float) -> None:
    """Refuse an address whose head does not answer within `timeout_s`, before `ray.init`: Ray retries a dead
    address for minutes, printing warnings that name other addresses (measured: still waiting at 240 s)."""
    endpoint = head_endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout_s).close()
    except OSError as err:
        reason = "no answer" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__)
        raise BakeoffError(
            f"cannot reach the Ray cluster at `{address}` ({reason} within {timeout_s:g} s, "
            "`runner.connect_timeout_s`); start one with `ray start --head`, or fix `runner.address` / "
            "`--ray-address`"
        ) from None


def _absolute_pythonpath() -> None:
    """Workers of a Ray started here inherit this environment but not this folder: a relative PYTHONPATH
    (`PYTHONPATH=src`) would import another bakeoff there, or none."""
    if os.environ.get("PYTHONPATH"):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            str(Path(part).resolve()) for part in os.environ["PYTHONPATH"].split(os.pathsep) if part
        )


def _cluster_summary(ray) -> str:
    total = ray.cluster_resources()
    alive = len([n for n in ray.nodes() if n.get("Alive")])
    return f"{alive} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs"


def run_spec_on_ray(spec: RunSpec, console: Console | None = None, task: TaskData | None = None) -> RunOutcome:
    """Run (or resume) the grid as Ray tasks; `task` is what preflight returned, if the caller already ran it
    (`bakeoff run` does, on the driver, before taking the run folder's lock)."""
    console = console or Console(stderr=True)
    ray = import_ray()
    # Workers may run in other folders and on other machines: give them the run folder as an absolute path.
    spec = spec.model_copy(update={"output": spec.output.model_copy(update={"dir": spec.run_dir.resolve()})})
    with ray_session(ray, spec.runner, console):
        nodes = nodes_from_ray(ray.nodes())
        hardware = cluster_gpu(nodes, spec.runner.gpu)
        if task is None:
            task = preflight(spec, create_run_dir=True)
        trials = expand_grid(spec)
        plans = {trial: trial_resources(trial, spec, hardware, len(task.labels)) for trial in trials}
        refuse_unplaceable(plans, nodes)
        store = RunFolder(spec.run_dir).claim_store(
            spec.fingerprint(), run_metadata(spec, task, f"ray: {_cluster_summary(ray)}")
        )
        console.print(
            f"[bold]{escape(spec.name)}[/bold]: {len(task.labels)} labels, {len(trials)} trials as Ray tasks "
            + escape(f"({_plan_summary(plans)}) -> {spec.run_dir}")
        )
        ran, failed = _run_grid(ray, spec, task, trials, plans, store, console)
    return RunOutcome(spec.run_dir, task, store, ran, len(trials) - ran, failed)


def _plan_summary(plans: dict[Trial, TrialResources]) -> str:
    by_candidate = {}
    for trial, need in plans.items():
        by_candidate.setdefault(trial.candidate.name, need)
    return "; ".join(f"{name}: {need.gpus} GPU, {need.cpus:g} CPU ({need.why})" for name, need in by_candidate.items())


def _run_grid(
    ray, spec: RunSpec, task, trials: list[Trial], plans, store: ResultStore, console: Console
) -> tuple[int, int]:
    """Submit every trial not yet done, store each result as it arrives; returns (ran, failed)."""
    from bakeoff.runners.ray_worker import ProgressBoard, execute_trial

    pending = [trial for trial in trials if store.status(trial.trial_id) != "done"]
    progress = RayProgress(console, len(trials), len(trials) - len(pending), spec.run_dir, spec.runner.progress_every_s)
    if not pending:
        progress.close()
        return 0, 0
    subsets = {seed: nested_subsets(task.train_pool.labels, spec.grid.train_sizes, seed) for seed in spec.grid.seeds}
    board = ray.remote(num_cpus=0)(ProgressBoard).remote()
    task_ref = ray.put(task)  # once: every trial reads the same object
    remote = ray.remote(execute_trial)
    in_flight = {}
    failed = 0
    with stop_on_interrupt(console) as stop:
        try:
            for trial in pending:
                store.start(trial.trial_id, trial.candidate.name, trial.method, trial.train_size, trial.seed)
                indices = list(subsets[trial.seed][trial.train_size]) if trial.train_size else []
                need = plans[trial]
                ref = remote.options(
                    **need.ray_options(),
                    max_retries=MAX_RETRIES,
                    retry_exceptions=False,
                    name=f"bakeoff {trial.trial_id}",
                ).remote(spec, task_ref, trial, indices, need.cpus, board)
                in_flight[ref] = trial
            while in_flight:
                stop.check()
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    trial = in_flight.pop(ref)
                    error = _store_result(ray, ref, trial, spec, store)
                    track_trial(
                        spec, spec.run_dir, console
                    )  # log the stored trial to MLflow, when `tracking.mlflow` is set
                    failed += error is not None
                    progress.finished(trial.trial_id, error)
                progress.refresh(ray.get(board.snapshot.remote()), {t.trial_id for t in in_flight.values()})
        except (RunInterrupted, KeyboardInterrupt):
            for ref in in_flight:  # their trials stay `running` in the store, so the next run redoes them
                ray.cancel(ref, force=True)
            raise
        finally:
            progress.close()
    return len(pending), failed


def _store_result(ray, ref, trial: Trial, spec: RunSpec, store: ResultStore) -> str | None:
    """Store one finished task's outcome; returns the failure reason, or None."""
    from ray import exceptions

    from bakeoff.runners.ray_worker import write_files

    try:
        result = ray.get(ref)
    except exceptions.TaskCancelledError:
        raise RunInterrupted from None
    except exceptions.RayError as err:
        reason = _failure_reason(err)
        store.fail(trial.trial_id, reason)
        return reason
    if result.outcome.error is not None:
        store.fail(trial.trial_id, result.outcome.error)
        return result.outcome.error
    trial_dir = RunFolder(spec.run_dir).trial(trial.trial_id).path
    try:
        if result.files:
            write_files(trial_dir, result.files)
    except OSError as err:
        raise_if_disk_full(err, trial.trial_id, trial_dir)
        raise
    store.finish(trial.trial_id, result.outcome.record | {"ray": {"node": result.node, "trial_s": result.trial_s}})
    return None


def _failure_reason(err: Exception) -> str:
    """One line for the store: what killed the task (after its retry), not Ray's multi-line report."""
    from ray import exceptions

    deaths = (
        (exceptions.NodeDiedError, "its node died"),
        (exceptions.OutOfMemoryError, "Ray's memory monitor killed it (host out of memory)"),
        (exceptions.WorkerCrashedError, "its worker process died (killed, or out of host memory)"),
    )
    for kind, what in deaths:
        if isinstance(err, kind):
            return f"{what}, on each of {MAX_RETRIES + 1} attempts"
    if isinstance(err, exceptions.RayTaskError):
        cause = err.cause if getattr(err, "cause", None) is not None else err
        text = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {text[0] if text else ''}"[:500]
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:500]
