"""Run a spec's trial grid in this process, with progress bars, resuming what a previous run finished.

Everything that can be checked before hours of training is checked first (data, model sources,
QLoRA without CUDA, a writable run folder), so mistakes cost seconds. A trial that fails (diverged
loss, out of memory) is stored as failed with its reason and the run goes on with the others.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bakeoff.config import RunSpec
from bakeoff.data.splits import nested_subsets
from bakeoff.data.task import TaskData
from bakeoff.efficiency.threads import probe_threads
from bakeoff.recipes.trial import TrialContext, default_device, run_trial
from bakeoff.run_folder import RunFolder
from bakeoff.runners.disk import raise_if_disk_full
from bakeoff.runners.grid import Trial, expand_grid
from bakeoff.runners.interrupt import StopRequest, stop_on_interrupt
from bakeoff.runners.log_progress import ProgressLog
from bakeoff.runners.preflight import preflight
from bakeoff.store import DATA_FINGERPRINT, ResultStore
from bakeoff.tracking.live import track_trial

PACKAGES = (
    "bakeoff",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "scikit-learn",
    "sentence-transformers",
)


@dataclass
class RunOutcome:
    run_dir: Path
    task: TaskData
    store: ResultStore
    ran: int
    skipped: int
    failed: int


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_sha() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def run_metadata(spec: RunSpec, task: TaskData, device: str) -> dict:
    """What the store keeps about the run itself (written once, by the first run of the folder)."""
    return {
        "spec": spec.model_dump(mode="json"),
        "versions": package_versions(),
        "git_sha": git_sha(),
        "python": sys.version.split()[0],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "labels": task.labels,
        "data_report": task.report.as_dict(),
        DATA_FINGERPRINT: task.fingerprint(),
    }


def run_spec(spec: RunSpec, console: Console | None = None, task: TaskData | None = None) -> RunOutcome:
    """Run (or resume) the grid; `task` is what preflight returned, if the caller already ran it."""
    console = console or Console(stderr=True)
    device = default_device()
    if task is None:
        task = preflight(spec, create_run_dir=True)
    run_dir = spec.run_dir
    store = RunFolder(run_dir).claim_store(spec.fingerprint(), run_metadata(spec, task, device))
    trials = expand_grid(spec)
    subsets = {seed: nested_subsets(task.train_pool.labels, spec.grid.train_sizes, seed) for seed in spec.grid.seeds}
    report = task.report
    console.print(
        f"[bold]{spec.name}[/bold]: {len(task.labels)} labels, train pool {report.train_examples}, "
        f"validation {report.validation_examples}, test {report.test_examples}; {len(trials)} trials on {device} "
        f"({torch.get_num_threads()} threads) -> {escape(str(run_dir))}"
    )
    for warning in report.warnings:
        console.print(f"[yellow]data: {escape(warning)}[/yellow]")
    if report.test_exact_in_train or report.test_near_duplicates_of_train:
        console.print(
            f"[yellow]data: {report.test_exact_in_train} test items also in train, "
            f"{report.test_near_duplicates_of_train} near-duplicates of train items[/yellow]"
        )
    ctx = TrialContext(spec=spec, task=task, run_dir=run_dir, device=device)
    # Plain timestamped lines: RUN_DIR/progress.log, and the console when it is not a terminal.
    plan = {trial.trial_id: (trial.candidate.name, trial.train_size) for trial in trials}
    log = ProgressLog(console, run_dir, len(trials), spec.runner.progress_every_s, plan)
    ran = skipped = failed = 0
    max_threads = torch.get_num_threads()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),  # from the trials left and those of their kind done (ProgressLog)
    )
    with stop_on_interrupt(console) as stop, Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("trials", total=len(trials), eta="")
        for trial in trials:
            stop.check()
            if store.status(trial.trial_id) == "done":
                skipped += 1
                log.skipped(trial.trial_id)
                progress.advance(overall)
                continue
            subset = (
                task.train_pool.subset(subsets[trial.seed][trial.train_size])
                if trial.train_size
                else task.train_pool.subset([])
            )
            log.start(trial.trial_id)
            if device == "cpu" and not trial.candidate.is_baseline:
                _set_threads(spec.runner.threads, max_threads, log)
            error, fine_tune_s = _run_one(trial, ctx, subset, store, progress, stop, log)
            log.end(error, fine_tune_s)
            progress.update(overall, eta=log.eta_text())
            track_trial(spec, run_dir, console)  # log the stored trial to MLflow, when `tracking.mlflow` is set
            ran += 1
            if error:
                failed += 1
                console.print(f"[red]{trial.trial_id} failed:[/red] {escape(error)}")
            progress.advance(overall)
    torch.set_num_threads(max_threads)  # as the run found it (`runner.threads` may have changed it per trial)
    return RunOutcome(run_dir, task, store, ran, skipped, failed)


def _set_threads(setting: int | str, max_threads: int, log: ProgressLog) -> None:
    """torch threads for the next LLM trial: fixed, or the fastest now (`efficiency/threads.py`)."""
    if setting != "auto":
        torch.set_num_threads(int(setting))
        return
    best, probe_ms = probe_threads(max_threads)
    timed = ", ".join(f"{threads}: {ms:.0f} ms" for threads, ms in probe_ms.items())
    log.line(f"  threads {best} (decoder-like probe by threads, {timed})")


def _run_one(
    trial: Trial,
    ctx: TrialContext,
    subset,
    store: ResultStore,
    progress: Progress,
    stop: StopRequest,
    log: ProgressLog,
) -> tuple[str | None, float | None]:
    """Run a trial and store its outcome; returns the failure reason (or None) and its fine-tune seconds."""
    store.start(trial.trial_id, trial.candidate.name, trial.method, trial.train_size, trial.seed)
    label = f"  {trial.trial_id}"
    # eta="": the bar's ETA column reads the field on every row; only the overall row fills it in.
    steps = progress.add_task(f"{label} train", total=None, visible=trial.method not in ("zero-shot", "fit"), eta="")
    scoring = progress.add_task(f"{label} score", total=None, visible=not trial.candidate.is_baseline, eta="")

    def on_step(loss: float) -> None:
        progress.update(steps, advance=1, description=f"{label} train loss {loss:.3f}")
        log.step(loss)
        stop.check()

    def on_scored(n: int) -> None:
        progress.advance(scoring, n)
        log.scoring(n)
        stop.check()

    def on_phase(phase: str, items: int) -> None:
        progress.update(scoring, total=items, completed=0, description=f"{label} score {phase}")
        log.scoring_phase(phase, items)

    ctx.on_step, ctx.on_scored, ctx.on_epoch, ctx.on_phase = on_step, on_scored, log.epoch, on_phase
    try:
        outcome = run_trial(trial, ctx, subset)
    except OSError as err:
        raise_if_disk_full(err, trial.trial_id, ctx.run_dir)
        raise
    finally:
        progress.remove_task(steps)
        progress.remove_task(scoring)
    if outcome.error is not None:
        store.fail(trial.trial_id, outcome.error)
        return outcome.error, None
    store.finish(trial.trial_id, outcome.record)
    return None, (outcome.record.get("timings") or {}).get("fine_tune_s")
