"""`bakeoff loadtest URL --rate ...`: open-loop Poisson load, p50/p95/p99 per step, max rate within the SLA."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import typer
from rich.table import Table

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.errors import BakeoffError


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _texts(texts_file: Path | None, run_dir: Path | None) -> tuple[str, ...]:
    if texts_file is not None:
        try:
            lines = [line.strip() for line in texts_file.read_text(encoding="utf-8").splitlines()]
        except OSError as err:
            raise BakeoffError(f"--texts {texts_file}: {err.strerror}") from None
        except UnicodeDecodeError as err:
            raise BakeoffError(
                f"--texts {texts_file} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                "save it as UTF-8, one text per line"
            ) from None
        found = tuple(line for line in lines if line)
        if not found:
            raise BakeoffError(f"--texts {texts_file} has no text: write one text per line")
        return found
    if run_dir is not None:
        from bakeoff.serving.predictor import run_test_texts

        return tuple(run_test_texts(run_dir))
    raise BakeoffError("no texts to send: pass --texts FILE (one text per line) or --run RUN_DIR (its test set)")


def _stored_run_identity(run: Path | None, candidate: str | None):
    """With --run and --candidate (the result is stored): the run's identity, once it is known to be able to hold
    this candidate's test, before its texts are read. None when nothing is to be stored."""
    from bakeoff.serving.record import check_run_candidate, run_identity

    if candidate is not None and run is None:
        raise BakeoffError("--candidate needs --run RUN_DIR (where to store the result)")
    storing = run is not None and candidate is not None
    identity = run_identity(run) if storing else None
    if identity is not None:  # a run that cannot hold this candidate's test is refused before its texts are read
        check_run_candidate(identity, candidate)
    return identity


def _plan(
    url: str,
    rate: str,
    duration: float,
    sla_p95_ms: float,
    texts: Path | None,
    run: Path | None,
    texts_per_request: int,
    timeout_s: float,
    bisect: int,
    seed: int,
):
    """The load plan the options describe: the classify endpoint behind `url`, and BAKEOFF_API_KEY if set."""
    from bakeoff.serving.loadtest import LoadPlan, parse_rates

    endpoint = url.rstrip("/") if url.rstrip("/").endswith("/v1/classify") else url.rstrip("/") + "/v1/classify"
    key = os.environ.get("BAKEOFF_API_KEY")
    return LoadPlan(
        url=endpoint,
        rates_per_s=parse_rates(rate),
        duration_s=duration,
        sla_p95_ms=sla_p95_ms,
        texts=_texts(texts, run),
        texts_per_request=texts_per_request,
        timeout_s=timeout_s,
        bisect_steps=bisect,
        seed=seed,
        headers=(("authorization", f"Bearer {key}"),) if key else (),
    )


def _show_step(step, as_json: bool) -> None:
    """One rate step as it finishes (not with --json, whose stdout is the result alone)."""
    if not as_json:
        verdict = "[green]within SLA[/green]" if step.within_sla else "[red]over SLA[/red]"
        console.print(
            f"  {step.rate_per_s:8.2f} req/s: achieved {step.achieved_per_s:7.2f}, p95 "
            f"{_ms(step.latency_ms_p95)} ms, "
            f"{step.errors} errors, {step.timeouts} timeouts: {verdict}"
        )


def _run_test(plan, identity, candidate: str | None, as_json: bool) -> dict:
    """Check the plan and (when storing) the server, then send the load, step by step."""
    from bakeoff.serving.loadtest import check_plan, search, server_info
    from bakeoff.serving.record import check_serves_run

    check_plan(plan)  # bad options are refused before anything is printed or sent
    if identity is not None:  # the server must serve this run's trial: checked before the test, not after minutes
        check_serves_run(server_info(plan.url, plan.headers), identity, candidate, plan.url)
    if not as_json:
        console.print(f"load test of {plan.url}: {plan.duration_s:g} s per step, SLA p95 <= {plan.sla_p95_ms:g} ms")
    return asyncio.run(search(plan, on_step=lambda step: _show_step(step, as_json)))


def _store_or_check(result: dict, run: Path | None, candidate: str | None) -> tuple[dict | None, str | None]:
    """Store the result in the run (with --run and --candidate), or refuse a test that measured nothing; then
    (stored record or None, why the unstored test is incomplete or None)."""
    from bakeoff.serving.record import incomplete, record_in_run, unanswered

    stored, caveat = None, None
    storing = run is not None and candidate is not None
    if storing:  # refuses (nothing stored, exit 2) a test with errors, a lost server, another run's server
        stored = record_in_run(run, candidate, result)
    elif (reason := unanswered(result)) is not None:  # measured nothing at all
        raise BakeoffError(reason)
    else:  # not stored: the steps are still shown (a proxy's 429/503 under load is how a limit shows), then exit 1
        caveat = incomplete(result)
    return stored, caveat


def _steps_table(result: dict, plan) -> Table:
    """Every step tried, by offered rate."""
    table = Table(title=f"{plan.url} (p95 SLA {plan.sla_p95_ms:g} ms, {plan.duration_s:g} s per step)")
    for column in (
        "offered req/s",
        "achieved req/s",
        "sent",
        "errors",
        "timeouts",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "within SLA",
    ):
        table.add_column(column, justify="right")
    for step in sorted(result["steps"], key=lambda s: s["rate_per_s"]):
        table.add_row(
            f"{step['rate_per_s']:.2f}",
            f"{step['achieved_per_s']:.2f}",
            str(step["sent"]),
            str(step["errors"]),
            str(step["timeouts"]),
            _ms(step["latency_ms_p50"]),
            _ms(step["latency_ms_p95"]),
            _ms(step["latency_ms_p99"]),
            "yes" if step["within_sla"] else "no",
        )
    return table


def _print_verdict(result: dict, plan, run: Path | None, candidate: str | None, stored: dict | None) -> None:
    """The highest rate within the SLA, and where the result was stored."""
    best = result["max_rate_within_sla_per_s"]
    if best is None:
        stdout.print(f"max rate within SLA: below the lowest rate tried ({min(plan.rates_per_s):g} req/s)")
    else:
        note = "" if result["limit_found"] else " (every rate tried met the SLA: try higher rates)"
        stdout.print(
            f"max rate within SLA: [bold]{best:.2f} req/s[/bold] ({result['max_items_per_s_within_sla']:.2f} "
            "texts/s), "
            f"p95 {result['latency_ms_p95_at_max']:.0f} ms{note}"
        )
    if stored is not None:
        kept = f"; the {len(stored['history'])} earlier test(s) kept in its history" if stored["history"] else ""
        stdout.print(f"stored in {run} (serving.{candidate}){kept}; `bakeoff report {run}` shows it")


@user_errors
def loadtest_command(
    url: str = typer.Argument(..., help="Server base URL (e.g. http://127.0.0.1:8000) or its /v1/classify endpoint."),
    rate: str = typer.Option(..., "--rate", help="Requests per second to try, comma-separated, ascending: 1,2,4,8."),
    duration: float = typer.Option(10.0, "--duration", help="Seconds per rate step."),
    sla_p95_ms: float = typer.Option(500.0, "--sla-p95-ms", help="p95 latency a step must meet, ms."),
    bisect: int = typer.Option(
        3, "--bisect", help="Bisection steps between the last rate within the SLA and the first beyond it."
    ),
    texts_per_request: int = typer.Option(1, "--texts-per-request", min=1, max=256, help="Texts in each request."),
    timeout_s: float = typer.Option(
        10.0, "--timeout-s", min=0.1, max=300, help="Per-request timeout, s (counted as a timeout past it)."
    ),
    texts: Path = typer.Option(
        None, "--texts", help="File of texts to send, one per line (default: the --run's test set)."
    ),
    run: Path = typer.Option(
        None, "--run", help="Run folder: texts from its test set; with --candidate, store the result in it."
    ),
    candidate: str = typer.Option(
        None,
        "--candidate",
        help="With --run: the candidate the server serves (its /healthz must name this run and a trial of it).",
    ),
    seed: int = typer.Option(0, help="Seed for arrival times and text choice."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Send Poisson arrivals at each rate (open loop: a slow server cannot slow the sender), report achieved rate,
    p50/p95/p99, errors and timeouts per step, and the highest rate within the p95 SLA. Sends BAKEOFF_API_KEY if set."""
    identity = _stored_run_identity(run, candidate)
    plan = _plan(url, rate, duration, sla_p95_ms, texts, run, texts_per_request, timeout_s, bisect, seed)
    result = _run_test(plan, identity, candidate, as_json)
    stored, caveat = _store_or_check(result, run, candidate)
    if as_json:
        print(json.dumps(result, indent=1))
        _exit_if_incomplete(caveat)
        return
    stdout.print(_steps_table(result, plan))
    _print_verdict(result, plan, run, candidate, stored)
    _exit_if_incomplete(caveat)


def _exit_if_incomplete(caveat: str | None) -> None:
    """A test with HTTP errors or a lost server is shown, then exits 1: a script must not read it as clean."""
    if caveat is not None:
        console.print(f"incomplete test: {caveat}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
