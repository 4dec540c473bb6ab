"""Storing a load test in a run (`bakeoff loadtest --run RUN_DIR --candidate NAME`): only a complete test of that
run's own trial, and never at the cost of the measurement already stored.

The report and the decision take a stored capacity over any estimate, so a wrong one costs real money.
Reliability round 3 (issue 42) found two ways one went wrong: a test during which the server died replaced
a good 10 req/s with "below the lowest rate tried", and a test of another run's TF-IDF server landed in an
extraction run. So a test is stored only when every request got an answer from one server that stayed up,
and that server's /healthz names this run (its fingerprint and task type) and a finished trial of the
candidate. The measurement it replaces is kept in the entry's `history` (oldest first).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.run_folder import RunFolder
from bakeoff.serving.loadtest import connection_lost

STORED_KEYS = (
    "url",
    "sla_p95_ms",
    "duration_s_per_step",
    "texts_per_request",
    "steps",
    "max_rate_within_sla_per_s",
    "max_items_per_s_within_sla",
    "latency_ms_p95_at_max",
    "limit_found",
    "measured_at",
)


@dataclass(frozen=True)
class RunIdentity:
    """What a server must match for its load test to be stored in this run."""

    run_dir: Path
    fingerprint: str | None
    task_type: str
    finished: dict[str, set[str]]  # candidate -> its finished trial ids


def run_identity(run_dir: Path) -> RunIdentity:
    store = RunFolder(run_dir).open_store("--run ")
    try:
        fingerprint, spec, trials = store.get_meta("fingerprint"), store.get_meta("spec") or {}, store.trials()
    finally:
        store.close()
    finished: dict[str, set[str]] = {}
    for trial in trials:
        if trial["status"] == "done" and trial["result"]:
            finished.setdefault(trial["candidate"], set()).add(trial["trial_id"])
    task_type = (spec.get("task") or {}).get("type") or "classification"
    return RunIdentity(Path(run_dir), fingerprint, task_type, finished)


def check_run_candidate(run: RunIdentity, candidate: str) -> None:
    """Before any request: the run can hold a load test of `candidate` at all."""
    if run.task_type != "classification":
        raise BakeoffError(
            f"--run {run.run_dir} holds a `{run.task_type}` task: `bakeoff serve` serves classification trials "
            "only, so no load test can be stored in it; drop --run and --candidate to test without storing"
        )
    if candidate not in run.finished:
        raise BakeoffError(
            f"--candidate `{candidate}` has no finished trial in {run.run_dir}; choose one of: "
            f"{', '.join(sorted(run.finished)) or 'none'}"
        )


def check_served_candidate(server: dict | None, candidate: str, url: str) -> None:
    """The server's /healthz must name `candidate`, so a result never lands on the wrong model."""
    served = (server or {}).get("model") or {}
    if served.get("candidate") != candidate:
        raise BakeoffError(
            f"--candidate `{candidate}`: the server at {url} serves `{served.get('candidate', 'unknown')}` "
            "(per its /healthz); load-test the matching server or fix --candidate"
        )


def check_serves_run(server: dict | None, run: RunIdentity, candidate: str, url: str) -> None:
    """The server's /healthz must name this run (fingerprint, task type) and a finished trial of `candidate`."""
    served = (server or {}).get("model") or {}
    serve_it = f"`bakeoff serve {run.run_dir} --candidate {candidate!r}`"
    if not served.get("trial_id") or not served.get("run_fingerprint"):
        raise BakeoffError(
            f"the server at {url} does not say which run it serves (its /healthz names no run fingerprint): "
            f"--run stores only a test of {serve_it} from this bakeoff version; nothing stored"
        )
    task_type = served.get("task_type") or "classification"
    if task_type != run.task_type:
        raise BakeoffError(
            f"the server at {url} serves a `{task_type}` task and {run.run_dir} holds a `{run.task_type}` task: "
            "load-test a server of this run; nothing stored"
        )
    if served["run_fingerprint"] != run.fingerprint:
        raise BakeoffError(
            f"the server at {url} serves `{served.get('candidate')}` of another run (fingerprint "
            f"{served['run_fingerprint']}, {run.run_dir} has {run.fingerprint}): test {serve_it}; nothing stored"
        )
    check_served_candidate(server, candidate, url)
    if served["trial_id"] not in run.finished.get(candidate, set()):
        raise BakeoffError(
            f"the server at {url} serves trial {served['trial_id']}, which {run.run_dir} has no finished trial "
            f"of; test {serve_it}; nothing stored"
        )


def unanswered(result: dict) -> str | None:
    """Why a load test measured nothing (no request answered at any step), or None if it measured something.
    Such a test says nothing about the server's capacity (a wrong URL or API key, a dead server, steps too
    short to send a request): it must not be stored as a capacity of 0."""
    steps = result["steps"]
    if any(step["ok"] for step in steps):
        return None
    if not any(step["sent"] for step in steps):
        return "no request was sent (each step too short for its rate: raise --duration or --rate)"
    kinds = _kinds(steps)
    found = ", ".join(f"{kind} x{count}" for kind, count in kinds.most_common()) or "errors"
    hint = " (set BAKEOFF_API_KEY to the server's key)" if "HTTP 401" in kinds else ""
    return f"no request was answered: {found}{hint}; check the URL and that the server is up"


def incomplete(result: dict) -> str | None:
    """Why a load test is no measurement of the server's capacity, or None if it is one. Complete means:
    every request sent got an HTTP 200 or timed out (a slow server's timeouts are part of the measurement),
    and the /healthz that answered before the test answered after it, for the same trial."""
    reason = unanswered(result)
    if reason is not None:
        return reason
    url, steps = result["url"], result["steps"]
    lost: Counter[str] = Counter()
    for step in steps:
        lost.update(connection_lost(step))
    if lost:
        rates = _rates(s for s in steps if connection_lost(s))
        return (
            f"the server at {url} stopped answering during the test ({_shown(lost)} at {rates} req/s): it died "
            "or restarted; restart it and run the test again"
        )
    before, after = result.get("server"), result.get("server_after", result.get("server"))
    if before is not None and after is None:
        return (
            f"the server at {url} no longer answered /healthz at the end of the test (it died or hung); "
            "restart it and run the test again"
        )
    if before is not None and _identity(before) != _identity(after):
        return (
            f"the server at {url} changed during the test (it served {_trial(before)}, then {_trial(after)}); "
            "run the test again against one server"
        )
    refused = Counter({kind: n for kind, n in _kinds(steps).items() if kind.startswith("HTTP ")})
    if refused:
        rates = _rates(s for s in steps if any(k.startswith("HTTP ") for k in s.get("error_kinds") or {}))
        hint = " (set BAKEOFF_API_KEY to the server's key)" if "HTTP 401" in refused else ""
        return (
            f"requests were refused ({_shown(refused)} at {rates} req/s){hint}: a test with refused requests "
            "measures no capacity; fix the cause and run the test again"
        )
    return None


def record_in_run(run_dir, candidate: str, result: dict) -> dict:
    """Store a complete load test of this run's `candidate` under the run's `serving` section; the test it
    replaces goes to the entry's `history`. Refused (nothing stored) unless `incomplete` and
    `check_serves_run` pass."""
    run = run_identity(Path(run_dir))
    check_run_candidate(run, candidate)
    reason = incomplete(result)
    if reason is not None:
        raise BakeoffError(f"nothing stored in {run_dir}: {reason}")
    check_serves_run(result.get("server"), run, candidate, result["url"])
    served = result["server"]["model"]
    entry = {key: result[key] for key in STORED_KEYS} | {
        "trial_id": served.get("trial_id"),
        "hardware": served.get("hardware"),
        "device": served.get("device"),
        "run_fingerprint": served.get("run_fingerprint"),
        "batching": result["server"].get("batching"),
    }
    return RunFolder(run_dir).record_serving(candidate, entry)


def _kinds(steps: list[dict]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for step in steps:
        kinds.update(step.get("error_kinds") or {})
    return kinds


def _shown(kinds: Counter[str]) -> str:
    return ", ".join(f"{kind} x{count}" for kind, count in kinds.most_common())


def _rates(steps) -> str:
    return ", ".join(f"{step['rate_per_s']:g}" for step in steps)


def _identity(server: dict | None) -> tuple:
    model = (server or {}).get("model") or {}
    return model.get("candidate"), model.get("trial_id"), model.get("run_fingerprint")


def _trial(server: dict | None) -> str:
    model = (server or {}).get("model") or {}
    return f"`{model.get('candidate', '?')}` ({model.get('trial_id', '?')})"
