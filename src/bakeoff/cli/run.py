"""`bakeoff run CONFIG [key=value ...]`: run (or resume) the comparison a YAML config describes."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.config import RunnerSpec, RunSpec, load_spec
from bakeoff.errors import BakeoffError, ConfigError


def run_judge(spec: RunSpec, trials: list[dict], run_dir) -> tuple:
    """`(judge, note)` for `evaluation.judge`: the OpenAI-compatible endpoint, or the local candidate's finished
    trial loaded for judging; `(None, why)` when there is none or it cannot be built (the run still ends, and
    the analysis says so); `(None, None)` without `evaluation.judge`."""
    settings = spec.evaluation.judge
    if settings is None:
        return None, None
    from bakeoff.evaluation.judge import judge_from_spec

    if settings.endpoint is not None:
        return judge_from_spec(settings), f"{settings.model} at {settings.endpoint}"
    from bakeoff.evaluation.local_judge import candidate_judge

    try:
        judge, trial_id = candidate_judge(spec, trials, run_dir)
    except BakeoffError as err:  # the judge's own model failed to load: the trials' analysis is still stored
        return None, f"the local judge could not be loaded: {err}"
    return judge, f"candidate `{settings.candidate}` (trial {trial_id})"


def execute(spec: RunSpec) -> None:
    """Run the grid, store the cross-trial analysis, then write the summary, results and report, and print
    the recommendation. Shared by `run` and `demo`. One driver per run folder: a second one is refused."""
    from bakeoff.report.build import build
    from bakeoff.report.summary import appetite_lines, robustness_table, terminal_table
    from bakeoff.runners.analysis import analyse_run
    from bakeoff.runners.lock import run_folder_lock
    from bakeoff.runners.preflight import preflight
    from bakeoff.tracking.live import track_run_end

    if spec.runner.kind == "ray":
        from bakeoff.runners.ray_runner import run_spec_on_ray as run_spec  # imports ray only now
    else:
        from bakeoff.runners.local import run_spec

    # Preflight first, so `run` refuses exactly what `validate` refuses, with the same message.
    task = preflight(spec, create_run_dir=True)
    with run_folder_lock(spec.run_dir):
        outcome = run_spec(spec, console, task)
        try:
            spec_json = spec.model_dump(mode="json")
            # The decision and GPU-estimate sections may differ from the first run's (they do not change trials).
            outcome.store.set_meta("spec", spec_json)
            # The runner computes the analysis once; `report` and `recommend` only read it.
            trials = outcome.store.trials()
            judge, judge_note = run_judge(spec, trials, outcome.run_dir)
            outcome.store.set_meta("analysis", analyse_run(trials, outcome.run_dir, spec_json, judge, judge_note))
            run, recommendation, paths = build(outcome.run_dir)
            track_run_end(
                spec, outcome.run_dir, console
            )  # report files and recommendation to MLflow, when `tracking.mlflow` is set
        finally:  # closed here, not whenever the garbage collector gets to it (closing checkpoints the WAL)
            outcome.store.close()
    stdout.print(terminal_table(f"bakeoff: {spec.name}", run))
    stdout.print(robustness_table(run))
    for line in appetite_lines(run.run.analysis):
        stdout.print(f"data appetite: {line}", markup=False)
    if recommendation:
        stdout.print(f"\n{recommendation['rationale']}", markup=False, highlight=False)
    console.print(
        f"{outcome.ran} trials run, {outcome.skipped} already done (skipped), {outcome.failed} failed. "
        f"Report: {paths[2]}  Summary: {paths[0]}  Results: {paths[1]}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if outcome.failed:
        raise typer.Exit(1)


def with_runner_options(spec: RunSpec, runner: str | None, ray_address: str | None) -> RunSpec:
    """`--runner` / `--ray-address` over the config's `runner` section. An address means a Ray cluster, so
    `--ray-address` alone implies `--runner ray` (it was silently ignored by the local runner)."""
    if runner is None and ray_address is None:
        return spec
    if runner not in (None, "local", "ray"):
        raise ConfigError(f"--runner must be `local` or `ray`, not `{runner}`")
    if ray_address is not None and runner == "local":
        raise ConfigError("--ray-address joins a Ray cluster, and --runner is `local`: use `--runner ray`")
    if ray_address is not None and runner is None and spec.runner.kind == "local":
        console.print(f"--ray-address {ray_address}: running on Ray (as with --runner ray)", markup=False)
        runner = "ray"
    # Applied as typed fields, not as `key=value` overrides: YAML would read some host:port strings as numbers.
    chosen = spec.runner.model_dump() | {
        "kind": runner or spec.runner.kind,
        "address": ray_address or spec.runner.address,
    }
    if runner == "local":  # asked for by name: the config's Ray settings stay unused for this run
        chosen |= {"address": None, "gpu": None}
    try:
        return spec.model_copy(update={"runner": RunnerSpec.model_validate(chosen)})
    except ValidationError as err:
        raise ConfigError("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())) from None


@user_errors
def run_command(
    config: Path = typer.Argument(..., help="YAML run config (see configs/)."),
    overrides: list[str] = typer.Argument(
        None, help="Dotted overrides, e.g. training.epochs=2 grid.train_sizes=[50,100]."
    ),
    runner: str | None = typer.Option(
        None, "--runner", help="`local` (this process) or `ray` (each trial a Ray task); overrides `runner.kind`."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster to join (`auto`, "
        "`ray://host:10001`); "
        "overrides `runner.address`. Default: start Ray on this machine.",
    ),
    offline: bool = typer.Option(
        False,
        "--offline",
        help="Hub models and datasets from the local cache only, no network (same as HF_HUB_OFFLINE=1).",
    ),
) -> None:
    """Fine-tune and evaluate every candidate in CONFIG; re-running resumes where it stopped."""
    if offline:
        from bakeoff.models.sources import go_offline

        go_offline()
    spec = with_runner_options(load_spec(config, overrides or []), runner, ray_address)
    execute(spec)
