"""Measured serving capacity (the run's `serving` section, from `bakeoff loadtest --run`) in the decision and the
report: preferred over the estimate for the hardware being decided on, ignored for other hardware."""

from decision_fixture import results, typed

from bakeoff.decision.engine import recommend, with_answers
from bakeoff.decision.evidence import gather
from bakeoff.decision.inputs import DecisionInputs
from bakeoff.decision.measured import estimated_capacity, measured_capacity
from bakeoff.report.summary import markdown


def _step(rate, p95, sent=40, ok=None):
    return {
        "rate_per_s": rate,
        "sent": sent,
        "ok": sent if ok is None else ok,
        "errors": 0,
        "timeouts": 0,
        "achieved_per_s": rate,
        "latency_ms_p50": p95 / 2,
        "latency_ms_p95": p95,
        "latency_ms_p99": p95 * 1.2,
        "within_sla": p95 <= 100,
    }


def _entry(candidate, hardware, steps, sla=100.0):
    return {
        "trial_id": f"{candidate}/n200/s0",
        "hardware": hardware,
        "device": "cuda:0" if hardware != "cpu" else "cpu",
        "sla_p95_ms": sla,
        "texts_per_request": 1,
        "steps": steps,
        "measured_at": "2026-12-02T18:00:00+00:00",
        "batching": {"max_batch": 16, "max_wait_ms": 5.0},
        "url": "http://127.0.0.1:8000/v1/classify",
    }


def with_serving(serving: dict) -> dict:
    data = results()
    data["run"]["serving"] = serving
    return data


def test_measured_capacity_is_the_best_step_within_the_sla_asked():
    entry = _entry(
        "big-llm", "a10g", [_step(10, 20), _step(20, 45), _step(40, 80), _step(80, 900), _step(30, 60, ok=39)]
    )
    assert measured_capacity(entry).items_per_s == 40  # the 30/s step had an error: not counted
    assert measured_capacity(entry, sla_p95_ms=50).items_per_s == 20
    assert measured_capacity(entry, sla_p95_ms=10) is None
    assert estimated_capacity({"1": 10.0, "16": 40.0}, 100.0) == 16 / 0.040 * 0.7
    assert estimated_capacity({"1": 60.0}, 100.0) is None


def test_a_measurement_on_the_decided_gpu_replaces_the_estimate_and_can_change_the_answer():
    # By estimate, big-llm's p95 (2 x 60 ms at batch 1) cannot meet a 50 ms SLA ...
    assert "big-llm" in recommend(with_answers(typed(results()), {"sla_p95_ms": 50}))["excluded"]
    # ... but a load test on the A10G measured 20 items/s at p95 45 ms.
    serving = {"big-llm": _entry("big-llm", "a10g", [_step(10, 20), _step(20, 45), _step(40, 80)])}
    outcome = recommend(with_answers(typed(with_serving(serving)), {"sla_p95_ms": 50}))
    assert "big-llm" not in outcome["excluded"] and "big-llm" in dict(outcome["ranking"])
    evidence = {e.candidate: e for e in _gather(with_serving(serving), sla=50)}
    big = evidence["big-llm"]
    assert big.latency_source.startswith("measured by HTTP load test on a10g") and big.p95_ms == 45
    assert big.gpus == 3  # 50 items/s of load at 20 items/s per GPU
    assert big.usd_per_month == 3 * 1.0 * 730
    assert evidence["small-llm"].latency_source.startswith("estimated")


def _gather(data, sla=None):
    spec = data["run"]["spec"]
    decision = spec["decision"] | ({"sla_p95_ms": sla} if sla is not None else {})
    return gather(
        typed(data), DecisionInputs.of(decision, "classification"), 200, spec["efficiency"]["load_items_per_s"]
    )


def test_a_measurement_on_other_hardware_does_not_stand_in_for_the_decided_gpu():
    serving = {"big-llm": _entry("big-llm", "cpu", [_step(10, 20), _step(20, 45)])}
    assert "big-llm" in recommend(with_answers(typed(with_serving(serving)), {"sla_p95_ms": 50}))["excluded"]
    big = {e.candidate: e for e in _gather(with_serving(serving), sla=50)}["big-llm"]
    assert big.latency_source.startswith("estimated")


def test_a_baseline_measured_on_cpu_uses_its_load_test():
    serving = {"tfidf": _entry("tfidf", "cpu", [_step(100, 8), _step(200, 30), _step(400, 900)])}
    tfidf = {e.candidate: e for e in _gather(with_serving(serving))}["tfidf"]
    assert tfidf.latency_source.startswith("measured by HTTP load test on cpu: 200.0 items/s")
    assert tfidf.p95_ms == 30 and tfidf.usd_per_month == 1 * 0.1 * 730


def test_a_load_test_where_no_rate_met_the_sla_excludes_the_candidate():
    serving = {"tfidf": _entry("tfidf", "cpu", [_step(100, 300)])}
    outcome = recommend(with_answers(typed(with_serving(serving)), {"sla_p95_ms": 100}))
    assert "measured by HTTP load test" in outcome["excluded"]["tfidf"]


def test_the_report_shows_measured_capacity_beside_the_estimate():
    serving = {
        "big-llm": _entry("big-llm", "a10g", [_step(10, 20), _step(20, 45), _step(40, 80), _step(80, 400)], sla=200.0)
    }
    data = with_serving(serving)
    text = markdown("fixture", typed(data))
    assert "## Capacity under load: measured (HTTP load test) and estimated" in text
    row = next(line for line in text.splitlines() if line.startswith("| big-llm | big-llm/n200/s0 | a10g"))
    # measured: 40 items/s within 200 ms. Estimated on the A10G: batch 1 (60 ms) meets 2 x 60 <= 200 -> 1 / 0.06 x 0.7 =
    # 11.7;
    # batch 16 (400 ms) does not.
    assert "| 40.0 |" in row and "| 11.7 |" in row and "x3.43" in row


def test_a_load_test_that_got_no_answer_is_ignored_not_read_as_zero_capacity():
    """A wrong API key (every request 401) or a dead server measures nothing about capacity: the estimate
    decides, the candidate is not excluded, and the report says no request was answered."""
    failed = _step(2, 0, sent=6, ok=0) | {"latency_ms_p95": None, "errors": 6, "error_kinds": {"HTTP 401": 6}}
    serving = {"tfidf": _entry("tfidf", "cpu", [failed])}
    outcome = recommend(with_answers(typed(with_serving(serving)), {"sla_p95_ms": 100}))
    assert "tfidf" not in outcome["excluded"]
    tfidf = {e.candidate: e for e in _gather(with_serving(serving), sla=100)}["tfidf"]
    assert tfidf.latency_source == "measured on this run's CPU (batch 1)"
    assert "| no request answered |" in markdown("fixture", typed(with_serving(serving)))


def test_a_load_test_that_never_found_the_limit_is_a_lower_bound_not_the_capacity():
    """Every rate tried met the SLA: 2 requests/s is a floor, and pricing 50 items/s of load at 2 per replica
    would buy 25 machines. The estimate decides; the report marks the figure as a lower bound."""
    serving = {"tfidf": _entry("tfidf", "cpu", [_step(1, 8), _step(2, 9)])}
    tfidf = {e.candidate: e for e in _gather(with_serving(serving))}["tfidf"]
    assert tfidf.latency_source == "measured on this run's CPU (batch 1)"
    text = markdown("fixture", typed(with_serving(serving)))
    row = next(line for line in text.splitlines() if line.startswith("| tfidf | tfidf/n200/s0 | cpu"))
    assert "| >= 2.0 |" in row
    # judged at a tighter SLA than the test's, the 2/s step misses it: a real limit, and the 1/s step counts
    tighter = {e.candidate: e for e in _gather(with_serving(serving), sla=8.5)}["tfidf"]
    assert tighter.latency_source.startswith("measured by HTTP load test on cpu: 1.0 items/s")
