"""Reliability round 3 (issue 42), serving: a load test is stored only when complete and of the run's own
trial, never at the cost of the measurement already stored; POSTs must be JSON.

Runs on a fake model and a run store written directly (no training), so each test takes seconds. Servers
bind 127.0.0.1 on ephemeral ports and are stopped (or killed) inside the test; every wait is bounded."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from bakeoff.cli.main import app as cli
from bakeoff.errors import BakeoffError
from bakeoff.run_folder import RunFolder
from bakeoff.serving.app import create_app
from bakeoff.serving.predictor import ServedModel
from bakeoff.serving.record import incomplete, record_in_run
from bakeoff.serving.server import background
from bakeoff.store import SERVING_HISTORY_KEPT, ResultStore

LABELS = ["a", "b"]
FINGERPRINT = "fp-of-this-run"
TRIAL = "fake/n10/s0"
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def predict(texts: list[str]) -> np.ndarray:
    return np.tile([0.8, 0.2], (len(texts), 1))


def served(candidate="fake", trial_id=TRIAL, fingerprint=FINGERPRINT, task_type="classification") -> ServedModel:
    return ServedModel(
        candidate, trial_id, "baseline", LABELS, None, None, "cpu", "cpu", predict, fingerprint, task_type
    )


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run folder whose store holds one finished trial of `fake` (what `loadtest --run` reads), and texts."""
    store = RunFolder(tmp_path / "run").claim_store(FINGERPRINT, {"spec": {"task": {"type": "classification"}}})
    store.start(TRIAL, "fake", "baseline", 10, 0)
    store.finish(TRIAL, {"model": {"kind": "baseline"}})
    store.close()
    (tmp_path / "texts.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    return tmp_path / "run"


def stored_serving(run_dir: Path) -> dict | None:
    store = ResultStore(run_dir / "results.sqlite")
    try:
        return store.get_meta("serving")
    finally:
        store.close()


def loadtest(url: str, run_dir: Path, *extra: str, candidate: str = "fake"):
    argv = ["loadtest", url, "--texts", str(run_dir.parent / "texts.txt"), "--run", str(run_dir)]
    argv += ["--candidate", candidate, "--timeout-s", "5", *extra]
    return CliRunner().invoke(cli, argv, env={"COLUMNS": "200", "HF_HUB_OFFLINE": "1"})


def one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and re.search(pattern, " ".join(result.output.split())), result.output


FAKE_SERVER = f"""
import numpy as np
from bakeoff.serving.app import create_app
from bakeoff.serving.predictor import ServedModel
from bakeoff.serving.server import bind, serve
model = ServedModel("fake", "{TRIAL}", "baseline", ["a", "b"], None, None, "cpu", "cpu",
                    lambda texts: np.tile([0.8, 0.2], (len(texts), 1)), "{FINGERPRINT}", "classification")
sock = bind("127.0.0.1", 0)
print(sock.getsockname()[1], flush=True)
serve(create_app(model), sock)
"""


@contextlib.contextmanager
def server_process():
    """The fake model served by a separate process (so it can be killed -9); yields (process, base URL)."""
    process = subprocess.Popen(
        [sys.executable, "-c", FAKE_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        url = f"http://127.0.0.1:{int(process.stdout.readline())}"
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=5, trust_env=False) as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{url}/healthz").status_code == 200:
                        break
                time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def answered_so_far(url: str) -> float:
    with httpx.Client(timeout=5, trust_env=False) as http:
        text = http.get(f"{url}/metrics").text
    match = re.search(r'^bakeoff_requests_total\{status="200"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def kill_once_answering(process, url: str, after: float, timeout_s: float = 60) -> threading.Thread:
    """SIGKILL the server once it has answered `after` classify requests in all (bounded wait): mid-test
    whatever the machine's load, not at a fixed time that a slow start could miss."""

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if answered_so_far(url) >= after:
                    process.send_signal(signal.SIGKILL)
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.integration
def test_a_server_killed_mid_test_fails_the_test_and_keeps_the_stored_measurement(run_dir):
    sla = ("--sla-p95-ms", "10000")  # the first test is within the SLA however loaded this machine is
    with server_process() as (process, url):
        good = loadtest(url, run_dir, "--rate", "20", "--duration", "0.4", "--bisect", "0", *sla)
        assert good.exit_code == 0, good.output
        before = stored_serving(run_dir)
        assert before["fake"]["max_rate_within_sla_per_s"] == 20 and before["fake"]["history"] == []
        # The second test: 20 then 40 requests/s for 1.5 s each; the server dies after answering 4 of them.
        watcher = kill_once_answering(process, url, after=answered_so_far(url) + 4)
        started = time.monotonic()
        failed = loadtest(url, run_dir, "--rate", "20,40", "--duration", "1.5", "--bisect", "2", *sla)
        watcher.join(timeout=10)
        assert process.wait(timeout=10) == -signal.SIGKILL
    one_line_error(failed, r"nothing stored in .*the server at .* stopped answering during the test")
    assert time.monotonic() - started < 30, "a dead server stops the test: no more steps after it"
    assert stored_serving(run_dir) == before, "the good measurement is still the current one, untouched"


@pytest.mark.integration
def test_a_complete_test_replaces_the_stored_one_and_keeps_it_in_history(run_dir):
    with background(create_app(served()), start_timeout_s=20) as url:
        for seed in ("1", "2", "3"):
            result = loadtest(
                url,
                run_dir,
                "--rate",
                "20",
                "--duration",
                "0.5",
                "--bisect",
                "0",
                "--seed",
                seed,
                "--sla-p95-ms",
                "10000",
            )
            assert result.exit_code == 0, result.output
    entry = stored_serving(run_dir)["fake"]
    assert entry["trial_id"] == TRIAL and entry["run_fingerprint"] == FINGERPRINT
    assert len(entry["history"]) == 2 and all("history" not in old for old in entry["history"])
    assert [old["measured_at"] <= entry["measured_at"] for old in entry["history"]] == [True, True]
    assert "2 earlier test(s) kept" in " ".join(result.output.split())
    # The typed readers still read the current measurement (history is an extra key of the entry).
    from bakeoff.decision.measured import measured_capacity

    assert measured_capacity(entry).items_per_s == 20


def test_history_keeps_the_last_tests_only(run_dir):
    store = ResultStore(run_dir / "results.sqlite")
    try:
        for i in range(SERVING_HISTORY_KEPT + 5):
            stored = store.record_serving("fake", {"measured_at": str(i), "steps": []})
    finally:
        store.close()
    assert stored["measured_at"] == str(SERVING_HISTORY_KEPT + 4)
    assert [old["measured_at"] for old in stored["history"]] == [str(i) for i in range(4, SERVING_HISTORY_KEPT + 4)]


@pytest.mark.parametrize(
    "model, message",
    [
        (served(fingerprint="fp-of-another-run"), r"serves `fake` of another run \(fingerprint fp-of-another-run"),
        (served(task_type="extraction"), r"serves a `extraction` task and .* holds a `classification` task"),
        (served(candidate="tfidf"), r"--candidate `fake`: the server at .* serves `tfidf`"),
        (served(trial_id="fake/n99/s0"), r"serves trial fake/n99/s0, which .* has no finished trial of"),
        (served(fingerprint=None), r"does not say which run it serves"),
    ],
    ids=["another run", "another task type", "another candidate", "another trial", "no run named"],
)
def test_loadtest_refuses_a_server_of_another_run_and_stores_nothing(run_dir, model, message):
    with background(create_app(model), start_timeout_s=20) as url, httpx.Client(trust_env=False) as http:
        health = http.get(f"{url}/healthz").json()["model"]
        assert (health["trial_id"], health["task_type"]) == (model.trial_id, model.task_type)
        result = loadtest(url, run_dir, "--rate", "10", "--duration", "0.3", "--bisect", "0")
    one_line_error(result, message)
    assert stored_serving(run_dir) is None


def test_loadtest_refuses_a_candidate_the_run_does_not_have_before_sending_anything(run_dir):
    result = loadtest("http://127.0.0.1:9", run_dir, "--rate", "1", candidate="tfidf-logreg")
    one_line_error(result, r"--candidate `tfidf-logreg` has no finished trial in .*; choose one of: fake")
    assert stored_serving(run_dir) is None


def test_healthz_names_the_trial_the_run_and_the_task_type():
    with background(create_app(served()), start_timeout_s=20) as url, httpx.Client(trust_env=False) as http:
        model = http.get(f"{url}/healthz").json()["model"]
    assert (model["trial_id"], model["run_fingerprint"], model["task_type"]) == (TRIAL, FINGERPRINT, "classification")


def _result(steps, server_after="same"):
    server = {"model": {"candidate": "fake", "trial_id": TRIAL, "run_fingerprint": FINGERPRINT}}
    after = server if server_after == "same" else server_after
    return {"url": "http://127.0.0.1:9/v1/classify", "steps": steps, "server": server, "server_after": after}


def _step(rate, sent, ok, kinds=None):
    return {"rate_per_s": rate, "sent": sent, "ok": ok, "error_kinds": kinds or {}}


@pytest.mark.parametrize(
    "result, message",
    [
        (_result([_step(5, 10, 10), _step(10, 20, 12, {"ConnectError": 8})]), r"stopped answering .*ConnectError x8"),
        (_result([_step(5, 10, 7, {"RemoteProtocolError": 3})]), r"stopped answering .*RemoteProtocolError x3"),
        (_result([_step(5, 10, 10)], server_after=None), r"no longer answered /healthz"),
        (
            _result([_step(5, 10, 10)], server_after={"model": {"candidate": "fake", "trial_id": "fake/n99/s0"}}),
            r"changed during the test",
        ),
        (_result([_step(5, 10, 6, {"HTTP 500": 4})]), r"requests were refused \(HTTP 500 x4 at 5 req/s\)"),
        (_result([_step(5, 10, 6, {"HTTP 401": 4})]), r"refused .*set BAKEOFF_API_KEY"),
    ],
    ids=["connection refused", "connection reset", "health gone", "server replaced", "HTTP 500", "HTTP 401"],
)
def test_an_incomplete_test_is_refused_and_nothing_is_stored(run_dir, result, message):
    assert re.search(message, incomplete(result))
    with pytest.raises(BakeoffError, match="nothing stored in"):
        record_in_run(run_dir, "fake", result)
    assert stored_serving(run_dir) is None


def test_timeouts_of_an_overloaded_server_are_part_of_a_complete_test():
    assert incomplete(_result([_step(5, 10, 10), _step(50, 100, 60, {"timeout": 40})])) is None


def test_a_text_plain_post_is_refused_on_every_post_endpoint():
    """A browser posts text/plain cross-origin without a CORS preflight: every body-taking route needs JSON."""
    app = create_app(served())
    posts = [route.path for route in app.routes if "POST" in getattr(route, "methods", ())]
    assert posts == ["/v1/classify"]
    with background(app, start_timeout_s=20) as url, httpx.Client(trust_env=False) as http:
        for path in posts:
            answer = http.post(url + path, content=b'{"texts": ["x"]}', headers={"content-type": "text/plain"})
            assert answer.status_code == 415 and "application/json" in answer.json()["error"]["message"]
            assert http.post(url + path, json={"texts": ["x"]}).status_code == 200
            assert (
                http.post(
                    url + path, content=b'{"texts": ["x"]}', headers={"content-type": "Application/JSON; charset=utf-8"}
                ).status_code
                == 200
            )


def test_a_plain_load_test_with_http_errors_shows_its_steps_then_exits_1(tmp_path, monkeypatch):
    """Without --run nothing is stored: a proxy's 503s under load are how a limit shows, so the steps are printed
    (table or JSON), then the reason, exit 1. Only a test that measured nothing is an error (exit 2)."""
    import bakeoff.serving.loadtest as loadtest_module

    result = _result([_step(5, 10, 10), _step(10, 20, 14, {"HTTP 503": 6})])
    for step in result["steps"]:
        step |= {"achieved_per_s": step["rate_per_s"], "errors": step["sent"] - step["ok"], "timeouts": 0}
        step |= {"latency_ms_p50": 20.0, "latency_ms_p95": 40.0, "latency_ms_p99": 50.0, "within_sla": True}
    result |= {"max_rate_within_sla_per_s": 10.0, "max_items_per_s_within_sla": 10.0, "latency_ms_p95_at_max": 40.0}
    result |= {"limit_found": False}

    async def canned(plan, on_step=None):
        return result

    monkeypatch.setattr(loadtest_module, "search", canned)
    (tmp_path / "texts.txt").write_text("one\ntwo\n", encoding="utf-8")
    argv = ["loadtest", "http://127.0.0.1:9", "--texts", str(tmp_path / "texts.txt"), "--rate", "5,10"]
    shown = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
    assert shown.exit_code == 1, shown.output
    assert "max rate within SLA" in shown.output and "incomplete test: " in shown.output and "HTTP 503" in shown.output
    as_json = CliRunner().invoke(cli, [*argv, "--json"], env={"COLUMNS": "200"})
    assert as_json.exit_code == 1 and '"max_rate_within_sla_per_s": 10.0' in as_json.output
    result["steps"] = [_step(5, 10, 0, {"HTTP 503": 10})]
    nothing = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
    assert nothing.exit_code == 2 and "no request was answered" in nothing.output
