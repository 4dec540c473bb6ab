"""`bakeoff run CONFIG [key=value ...]`: run (or resume) the comparison a YAML config describes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.config import RunnerSpec, RunSpec, load_spec
from bakeoff.errors import ConfigError

if TYPE_CHECKING:
    from bakeoff.api import Run


def execute(spec: RunSpec) -> None:
    """`bakeoff.run(spec)`, then the results on stdout; exit 1 when a trial failed. Shared by `run` and `demo`."""
    from bakeoff.api import run

    show(run(spec, console))


def show(run: Run) -> None:
    """The terminal table, robustness, data appetite and the recommendation (stdout); what the call did (stderr)."""
    from bakeoff.report.summary import appetite_lines, robustness_table, terminal_table

    stdout.print(terminal_table(f"bakeoff: {run.name}", run.results))
    stdout.print(robustness_table(run.results))
    for line in appetite_lines(run.results.run.analysis):
        stdout.print(f"data appetite: {line}", markup=False)
    if run.recommendation:
        stdout.print(f"\n{run.recommendation.rationale}", markup=False, highlight=False)
    outcome = run.outcome
    summary, results, report = outcome.outputs
    console.print(
        f"{outcome.ran} trials run, {outcome.skipped} already done (skipped), {outcome.failed} failed. "
        f"Report: {report}  Summary: {summary}  Results: {results}",
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
