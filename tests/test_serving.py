"""`bakeoff serve`, `bakeoff loadtest` and `bakeoff export model` on a tiny real run (TF-IDF + a tiny random
Llama with LoRA), and on fake models with a fixed service time. Servers bind 127.0.0.1 on ephemeral ports
and are stopped inside each test; every wait is bounded."""

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from bakeoff.serving.app import RequestLimits, create_app
from bakeoff.serving.batcher import BatchSettings
from bakeoff.serving.loadtest import LoadPlan, search
from bakeoff.serving.predictor import ServedModel, find_trial, load_served_model, run_test_texts
from bakeoff.serving.server import background

LABELS = ["a", "b", "c", "d"]
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def fake_model(service_s: float = 0.0, threshold: float | None = 0.5) -> ServedModel:
    """Label = int(text) mod 4 with probability 0.7 (0.4 when the text ends in '?': below the threshold).
    Each call sleeps `service_s` whatever the batch size: a model with a fixed service time."""

    def predict(texts: list[str]) -> np.ndarray:
        time.sleep(service_s)
        probs = np.full((len(texts), len(LABELS)), 0.1)
        for row, text in enumerate(texts):
            top = 0.4 if text.endswith("?") else 0.7
            probs[row] = (1 - top) / (len(LABELS) - 1)
            probs[row, int(text.rstrip("?")) % len(LABELS)] = top
        return probs

    return ServedModel("fake", "fake/n0/s0", "baseline", LABELS, threshold, None, "cpu", "cpu", predict)


def running(app):
    """Serve `app` on 127.0.0.1:<ephemeral> in a thread; yields its base URL; stops it (bounded) afterwards."""
    return background(app, start_timeout_s=20)


def client(**kwargs) -> httpx.Client:
    return httpx.Client(timeout=30, trust_env=False, **kwargs)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_folder) -> Path:
    """A real run: TF-IDF and a tiny Llama LoRA on 40 built-in tickets (about 20 s here)."""
    from bakeoff.config import RunSpec
    from bakeoff.runners.local import run_spec

    root = tmp_path_factory.mktemp("serve-run")
    spec = RunSpec.model_validate(
        {
            "name": "serve-test",
            "task": {"builtin": "support-tickets", "builtin_examples": 200},
            "candidates": [
                {"name": "tfidf", "model": "tfidf-logreg"},
                {"name": "tiny lora", "model": str(tiny_folder), "method": "lora"},
            ],
            "training": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "max_validation_items": 10},
            "grid": {"train_sizes": [40], "seeds": [0]},
            "evaluation": {
                "max_test_items": 30,
                "max_train_items": 8,
                "bootstrap_samples": 100,
                "max_perturbed_items": 10,
                "max_validation_items": 20,
                "max_out_of_scope_items": 20,
                "latency_repeats": 3,
                "perturbations": [{"name": "lowercase"}],
            },
            "output": {"dir": str(root / "run")},
        }
    )
    outcome = run_spec(spec)
    outcome.store.close()
    assert outcome.failed == 0
    return root / "run"


@pytest.mark.parametrize("candidate", ["tfidf", "tiny lora"])
def test_served_predictions_equal_the_runs_stored_predictions(tiny_run, candidate):
    record = find_trial(tiny_run, candidate)
    stored = np.load(record.folder / "predictions.npz")["probs"]
    model = load_served_model(record)
    texts = run_test_texts(tiny_run)
    assert len(texts) == len(stored)
    with (
        running(create_app(model, batching=BatchSettings(max_batch=8, max_wait_ms=10))) as url,
        client() as http,
        ThreadPoolExecutor(4) as pool,
    ):
        # Concurrent requests of 1-3 texts, so micro-batches mix requests of several clients.
        starts, chunks, size = [], [], 1
        while sum(map(len, chunks)) < len(texts):
            starts.append(sum(map(len, chunks)))
            chunks.append(texts[starts[-1] : starts[-1] + size])
            size = size % 3 + 1
        answers = list(pool.map(lambda chunk: http.post(f"{url}/v1/classify", json={"texts": chunk}), chunks))
    served = np.zeros_like(stored)
    for start, answer in zip(starts, answers):
        assert answer.status_code == 200, answer.text
        for offset, prediction in enumerate(answer.json()["predictions"]):
            row = [prediction["probabilities"][label] for label in model.labels]
            served[start + offset] = row
            assert prediction["label"] == model.labels[int(np.argmax(row))]
            assert prediction["probability"] == pytest.approx(max(row))
            assert prediction["abstain"] == (model.threshold is not None and max(row) < model.threshold)
    np.testing.assert_allclose(served, stored, atol=1e-5)
    assert model.threshold is not None, "the run has out-of-scope data: a threshold was chosen on validation"


LIMITS = RequestLimits(max_body_bytes=2_000, max_texts=3, max_chars=50)


@pytest.mark.parametrize(
    "method, path, body, headers, status",
    [
        ("POST", "/v1/classify", b'{"texts": ["1"', {}, 422),  # malformed JSON
        ("POST", "/v1/classify", b'{"texts": [1, 2]}', {}, 422),  # wrong type
        ("POST", "/v1/classify", b'{"texts": "1"}', {}, 422),  # a string, not a list
        ("POST", "/v1/classify", b'{"text": ["1"]}', {}, 422),  # missing field
        ("POST", "/v1/classify", b'{"texts": ["1"], "x": 1}', {}, 422),  # unknown field
        ("POST", "/v1/classify", b'{"texts": []}', {}, 422),  # nothing to classify
        ("POST", "/v1/classify", b'["1"]', {}, 422),  # not an object
        ("POST", "/v1/classify", b"", {}, 422),  # empty body
        ("POST", "/v1/classify", json.dumps({"texts": ["1"] * 4}).encode(), {}, 413),  # too many texts
        ("POST", "/v1/classify", json.dumps({"texts": ["1" * 51]}).encode(), {}, 422),  # text too long
        ("POST", "/v1/classify", json.dumps({"texts": ["1"], "pad": "x" * 3000}).encode(), {}, 413),  # body too large
        ("GET", "/v1/classify", None, {}, 405),
        ("POST", "/v2/classify", b'{"texts": ["1"]}', {}, 404),
        # Not declared JSON: a browser sends these cross-origin without a CORS preflight (issue 42), so refused.
        ("POST", "/v1/classify", b'{"texts": ["1"]}', {"content-type": "text/plain"}, 415),
        ("POST", "/v1/classify", b'{"texts": ["1"]}', {"content-type": "text/plain; charset=utf-8"}, 415),
        ("POST", "/v1/classify", b'{"texts": ["1"]}', {"content-type": "application/x-www-form-urlencoded"}, 415),
        ("POST", "/v1/classify", b'{"texts": ["1"]}', {"content-type": "multipart/form-data; boundary=x"}, 415),
        ("POST", "/v1/classify", b'{"texts": ["1"]}', {"content-type": "application/jsonx"}, 415),
        ("POST", "/v1/classify", b'{"texts": ["1"]}', {"content-type": ""}, 415),
    ],
)
def test_every_bad_request_gets_its_4xx_as_json(method, path, body, headers, status):
    app = create_app(fake_model(), LIMITS)
    headers = {"content-type": "application/json"} | headers if method == "POST" else headers
    with running(app) as url, client() as http:
        answer = http.request(method, url + path, content=body, headers=headers)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["status"] == status and error["message"]
        assert http.post(f"{url}/v1/classify", json={"texts": ["2"]}).status_code == 200, (
            "still serving after the bad request"
        )


def test_a_declared_oversize_body_is_refused_before_it_is_sent():
    import socket

    with running(create_app(fake_model(), LIMITS)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 999999\r\n\r\n{"
            )
            reply = ""
            for _ in range(20):  # headers and body may arrive in separate packets
                reply += sock.recv(65536).decode()
                if reply.endswith("}"):
                    break
    assert reply.startswith("HTTP/1.1 413") and '"status":413' in reply


def test_body_over_the_limit_is_refused_while_streaming():
    """No Content-Length (chunked upload): refused once the bytes read pass the limit."""
    app = create_app(fake_model(), LIMITS)

    def chunks():
        yield b'{"texts": ["1"], "pad": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    with running(app) as url, client() as http:
        answer = http.post(f"{url}/v1/classify", content=chunks(), headers={"content-type": "application/json"})
        assert answer.status_code == 413 and "limit" in answer.json()["error"]["message"]


def test_api_key_is_required_when_set():
    with running(create_app(fake_model(), api_key="s3cret")) as url, client() as http:
        assert http.get(f"{url}/healthz").status_code == 200, "health checks need no key"
        assert http.post(f"{url}/v1/classify", json={"texts": ["1"]}).status_code == 401
        assert (
            http.post(
                f"{url}/v1/classify", json={"texts": ["1"]}, headers={"authorization": "Bearer wrong"}
            ).status_code
            == 401
        )
        assert http.get(f"{url}/metrics").status_code == 401
        assert (
            http.post(
                f"{url}/v1/classify", json={"texts": ["1"]}, headers={"authorization": "Bearer s3cret"}
            ).status_code
            == 200
        )
        assert (
            http.post(f"{url}/v1/classify", json={"texts": ["1"]}, headers={"x-api-key": "s3cret"}).status_code == 200
        )


@pytest.mark.parametrize("max_batch", [8, 1])
def test_micro_batching_groups_concurrent_requests(max_batch):
    app = create_app(fake_model(service_s=0.05), batching=BatchSettings(max_batch=max_batch, max_wait_ms=20))
    texts = [str(i) + ("?" if i % 5 == 0 else "") for i in range(24)]
    with running(app) as url, client() as http, ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda text: http.post(f"{url}/v1/classify", json={"texts": [text]}), texts))
        metrics = http.get(f"{url}/metrics").text
    for text, answer in zip(texts, answers):  # each request gets its own text's answer back
        prediction = answer.json()["predictions"][0]
        assert prediction["label"] == LABELS[int(text.rstrip("?")) % 4]
        assert prediction["abstain"] == text.endswith("?")
    batches, scored = metric(metrics, "bakeoff_batch_size_texts_count"), metric(metrics, "bakeoff_batch_size_texts_sum")
    assert scored == len(texts)
    assert metric(metrics, "bakeoff_abstentions_total") == sum(t.endswith("?") for t in texts)
    assert metric(metrics, 'bakeoff_requests_total{status="200"}') == len(texts)
    if max_batch == 1:
        assert batches == len(texts)
    else:
        assert batches <= len(texts) / 2, f"{batches} batches for {len(texts)} concurrent requests: not grouped"
        assert metric(metrics, 'bakeoff_batch_size_texts_bucket{le="8.0"}') == batches, "no batch over --max-batch"


def test_serve_batching_bench_ceiling_bounds_any_batcher_from_measured_batch_costs(monkeypatch):
    """bench/serve_batching.py's ceiling: times one request of b texts on a batch-1 server (one call each),
    then the best b / t(b) among batches inside the SLA. A fake costing 20 ms + 10 ms per text: t(16) = 180
    ms, so under a 105 ms SLA only b <= 8 count and b = 8 (100 ms, 80/s) is the best."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    from serve_batching import BATCH_SIZES, batch_costs_s, batching_ceiling

    def predict(texts: list[str]) -> np.ndarray:
        time.sleep(0.02 + 0.01 * len(texts))
        return np.full((len(texts), len(LABELS)), 1 / len(LABELS))

    model = ServedModel("fake", "fake/n0/s0", "baseline", LABELS, None, None, "cpu", "cpu", predict)
    with running(create_app(model, batching=BatchSettings(max_batch=1, max_wait_ms=0))) as url, client() as http:
        costs = batch_costs_s(http, url, [str(i) for i in range(40)], repeats=1)
    assert list(costs) == list(BATCH_SIZES)
    for b, t in costs.items():  # the server adds its own overhead, never less than the sleep
        assert 0.02 + 0.01 * b <= t < 0.02 + 0.01 * b + 0.5, (b, t)
    exact = {b: 0.02 + 0.01 * b for b in BATCH_SIZES}
    assert batching_ceiling(exact, sla_s=0.105) == pytest.approx((80.0, 8))
    assert batching_ceiling(exact, sla_s=1.0) == pytest.approx((16 / 0.18, 16))
    assert batching_ceiling(exact, sla_s=0.01) == (None, None)


@pytest.mark.integration
def test_loadtest_against_a_slow_fake_finds_its_max_rate():
    """Fixed 50 ms service time, batch 1: capacity 20 requests/s. Open-loop arrivals must show the queue
    past it (a closed-loop tester would report every rate as fine)."""
    service_s, sla_ms = 0.05, 250.0
    capacity = 1 / service_s
    app = create_app(fake_model(service_s=service_s), batching=BatchSettings(max_batch=1, max_wait_ms=0))
    with running(app) as url:
        plan = LoadPlan(
            url=f"{url}/v1/classify",
            rates_per_s=(5, 10, 20, 40),
            duration_s=0.5,
            sla_p95_ms=sla_ms,
            texts=tuple(str(i) for i in range(50)),
            timeout_s=10,
            bisect_steps=2,
            seed=0,
        )
        started = time.monotonic()
        result = asyncio.run(search(plan))
        elapsed = time.monotonic() - started
    assert elapsed < 15
    by_rate = {s["rate_per_s"]: s for s in result["steps"]}
    assert by_rate[5]["within_sla"] and by_rate[5]["errors"] == 0
    overloaded = by_rate[40]
    assert not overloaded["within_sla"] and overloaded["latency_ms_p95"] > sla_ms
    assert overloaded["achieved_per_s"] < 1.3 * capacity, "the server cannot answer faster than its capacity"
    assert result["limit_found"]
    assert 0.5 * capacity <= result["max_rate_within_sla_per_s"] <= 1.5 * capacity
    assert len(result["steps"]) <= 6


SLOW_SERVER = """
import sys, time, numpy as np
from bakeoff.serving.app import create_app
from bakeoff.serving.batcher import BatchSettings
from bakeoff.serving.predictor import ServedModel
from bakeoff.serving.server import bind, serve
def predict(texts):
    time.sleep(1.0)
    return np.tile([0.7, 0.3], (len(texts), 1))
sock = bind("127.0.0.1", 0)
print(sock.getsockname()[1], flush=True)
serve(create_app(ServedModel("slow", "slow/n0/s0", "baseline", ["a", "b"], None, None, "cpu", "cpu", predict),
                 batching=BatchSettings(max_batch=1, max_wait_ms=0)), sock, drain_timeout_s=20)
"""


@pytest.mark.integration
def test_sigterm_lets_in_flight_requests_finish():
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        port = int(process.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        with client() as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{url}/healthz").status_code == 200:
                        break
                time.sleep(0.1)
            with ThreadPoolExecutor(3) as pool:
                # 3 requests, 1 s each, one at a time: the last finishes ~3 s after they are sent.
                futures = [pool.submit(http.post, f"{url}/v1/classify", json={"texts": ["x"]}) for _ in range(3)]
                time.sleep(0.5)
                process.send_signal(signal.SIGTERM)
                answers = [f.result(timeout=30) for f in futures]
        assert [a.status_code for a in answers] == [200, 200, 200]
        # It exits by itself once drained; uvicorn re-raises the SIGTERM it caught, so the status says so.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.integration
def test_cli_serve_and_loadtest_store_measured_capacity_in_the_run(tiny_run):
    """The real CLI: `serve` (API key from the environment) and `loadtest --run --candidate`, then SIGTERM."""
    from bakeoff.store import ResultStore

    env = ENV | {"BAKEOFF_API_KEY": "k3y"}
    server = subprocess.Popen(
        [sys.executable, "-m", "bakeoff.cli", "serve", str(tiny_run), "--candidate", "tfidf", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = server.stderr.readline()
            assert line or server.poll() is None, f"serve exited: {server.stderr.read()}"
            if match := re.search(r"on (http://127\.0\.0\.1:\d+)", line):
                url = match.group(1)
        assert url, "serve did not print its URL within 120 s"
        with client() as http:
            assert http.post(f"{url}/v1/classify", json={"texts": ["hi"]}).status_code == 401
        loadtest = subprocess.run(
            [
                sys.executable,
                "-m",
                "bakeoff.cli",
                "loadtest",
                url,
                "--rate",
                "4,8",
                "--duration",
                "0.5",
                "--bisect",
                "0",
                "--run",
                str(tiny_run),
                "--candidate",
                "tfidf",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert loadtest.returncode == 0, loadtest.stderr[-2000:]
        printed = json.loads(loadtest.stdout)
        assert printed["server"]["model"]["candidate"] == "tfidf" and len(printed["steps"]) == 2
        assert all(s["errors"] == 0 and s["sent"] > 0 for s in printed["steps"]), "the key was sent: no 401s"
        wrong = subprocess.run(
            [
                sys.executable,
                "-m",
                "bakeoff.cli",
                "loadtest",
                url,
                "--rate",
                "4",
                "--duration",
                "0.2",
                "--run",
                str(tiny_run),
                "--candidate",
                "tiny lora",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert wrong.returncode == 2 and "serves `tfidf`" in wrong.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    store = ResultStore(tiny_run / "results.sqlite")
    stored = store.get_meta("serving")
    store.close()
    assert set(stored) == {"tfidf"}
    assert stored["tfidf"]["trial_id"] == "tfidf/n40/s0" and stored["tfidf"]["hardware"] == "cpu"
    # /healthz names the run and its task, so a test of another run's server is refused (test_serving_reliability.py)
    assert printed["server"]["model"]["run_fingerprint"] == stored["tfidf"]["run_fingerprint"]
    assert stored["tfidf"]["run_fingerprint"] == find_trial(tiny_run, "tfidf").fingerprint is not None
    assert printed["server"]["model"]["task_type"] == "classification"
    assert stored["tfidf"]["max_rate_within_sla_per_s"] == printed["max_rate_within_sla_per_s"]
    # The typed readers (notebook API, report, decision) read a load-tested run: `serving` is part of the schema.
    import bakeoff

    run = bakeoff.load_run(tiny_run)
    assert run.results.run.serving["tfidf"]["trial_id"] == "tfidf/n40/s0" and run.recommendation is not None


def test_export_model_writes_a_merged_model_that_reproduces_the_predictions(tiny_run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from typer.testing import CliRunner

    from bakeoff.cli.main import app
    from bakeoff.evaluation.score import label_log_probs, probabilities
    from bakeoff.models.prompt import EncodedItem

    target = tmp_path / "export"
    result = CliRunner().invoke(
        app, ["export", "model", str(tiny_run), "--candidate", "tiny lora", "--to", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "vllm serve" in result.output and "--enable-lora --lora-modules tiny-lora=" in result.output
    assert (target / "adapter" / "adapter_model.safetensors").is_file()
    assert (target / "merged" / "model.safetensors").is_file()
    labels = json.loads((target / "labels.json").read_text())
    prompt = json.loads((target / "prompt.json").read_text())
    assert [entry["label"] for entry in labels] == find_trial(tiny_run, "tiny lora").labels
    assert "{text}" in prompt["template"]

    # Another stack's view: plain transformers on the merged folder, the template and label token ids.
    tokenizer = AutoTokenizer.from_pretrained(target / "merged")
    model = AutoModelForCausalLM.from_pretrained(target / "merged")
    texts = run_test_texts(tiny_run)[:6]
    items = [
        EncodedItem(tokenizer(prompt["template"].replace("{text}", t), add_special_tokens=False)["input_ids"], -1)
        for t in texts
    ]
    probs = probabilities(
        label_log_probs(
            model,
            items,
            [e["token_ids"] for e in labels],
            tokenizer.pad_token_id or 0,
            8,
            None,
            prompt["scoring"] == "first-token",
        )
    )
    stored = np.load(find_trial(tiny_run, "tiny lora").folder / "predictions.npz")["probs"][:6]
    np.testing.assert_allclose(probs, stored, atol=1e-4)

    refused = CliRunner().invoke(
        app, ["export", "model", str(tiny_run), "--candidate", "tfidf", "--to", str(tmp_path / "x")]
    )
    assert refused.exit_code == 2 and "bakeoff serve" in refused.output


def test_unknown_candidate_or_size_names_the_flag_and_the_choices(tiny_run):
    from bakeoff.errors import BakeoffError

    with pytest.raises(BakeoffError, match=r"--candidate `tfidf2`.*choose one of: tfidf, tiny lora"):
        find_trial(tiny_run, "tfidf2")
    with pytest.raises(BakeoffError, match=r"--train-size 7: `tfidf` finished at sizes \[40\]"):
        find_trial(tiny_run, "tfidf", train_size=7)
    with pytest.raises(BakeoffError, match="not a bakeoff run folder"):
        find_trial(tiny_run.parent, "tfidf")


def test_a_load_test_with_no_answered_request_is_refused_not_stored(tiny_run):
    from bakeoff.errors import BakeoffError
    from bakeoff.serving.record import record_in_run

    def result(steps):
        server = {"model": {"candidate": "tfidf", "trial_id": "tfidf/n40/s0", "hardware": "cpu"}}
        return {"url": "http://127.0.0.1:9/v1/classify", "steps": steps, "server": server}

    from bakeoff.store import ResultStore

    def stored():
        store = ResultStore(tiny_run / "results.sqlite")
        try:
            return store.get_meta("serving")
        finally:
            store.close()

    before = stored()
    unauthorised = {"sent": 6, "ok": 0, "error_kinds": {"HTTP 401": 6}}
    with pytest.raises(BakeoffError, match=r"nothing stored .*HTTP 401 x6 \(set BAKEOFF_API_KEY"):
        record_in_run(tiny_run, "tfidf", result([unauthorised]))
    with pytest.raises(BakeoffError, match="no request was sent"):
        record_in_run(tiny_run, "tfidf", result([{"sent": 0, "ok": 0, "error_kinds": {}}]))
    assert stored() == before


@pytest.mark.parametrize("sla", [0, -5, float("inf")])
def test_loadtest_refuses_an_sla_that_is_not_a_positive_number(sla):
    from bakeoff.errors import BakeoffError
    from bakeoff.serving.loadtest import check_plan

    plan = LoadPlan("http://127.0.0.1:1/v1/classify", (1.0,), 1.0, sla, ("x",), timeout_s=1, bisect_steps=0, seed=0)
    with pytest.raises(BakeoffError, match="--sla-p95-ms must be a positive number"):
        check_plan(plan)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: __import__("shutil").rmtree(folder), r"trial folder .* is missing \(deleted or moved\)"),
        (
            lambda folder: (folder / "adapter" / "adapter_model.safetensors").write_bytes(
                (folder / "adapter" / "adapter_model.safetensors").read_bytes()[:1000]
            ),
            r"adapter_model\.safetensors is damaged \(SafetensorError",
        ),
        (
            lambda folder: (folder / "adapter" / "adapter_config.json").write_text('{"r": 8,'),
            r"adapter_config\.json is damaged \(JSONDecodeError",
        ),
    ],
    ids=["folder deleted", "weights cut short", "config cut short"],
)
def test_a_damaged_llm_trial_folder_is_named_before_the_model_loads(tiny_run, tmp_path, damage, message):
    import shutil

    from bakeoff.errors import BakeoffError
    from bakeoff.serving.export import export_trial
    from bakeoff.serving.predictor import check_saved_files

    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    record = find_trial(copy, "tiny lora")
    check_saved_files(record)  # intact: no complaint
    damage(record.folder)
    with pytest.raises(BakeoffError, match=message + r".*re-run the trial"):
        load_served_model(record)
    with pytest.raises(BakeoffError, match=message):
        export_trial(record, tmp_path / "export")
