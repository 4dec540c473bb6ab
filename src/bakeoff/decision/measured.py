"""Serving capacity measured by `bakeoff loadtest` (the run's `serving` section), and the estimate it replaces.

A load test measures the highest rate a real HTTP server sustained with p95 within an SLA. Where one
exists for the hardware being decided on, it beats any estimate: the decision uses it, and the report
shows it beside the estimate. No torch here (decision/ and report/ run on any laptop).
"""

from __future__ import annotations

from dataclasses import dataclass

from bakeoff.efficiency.capacity import TARGET_UTILISATION


@dataclass(frozen=True)
class MeasuredCapacity:
    items_per_s: float  # highest offered rate (x texts per request) whose step met the SLA with no errors
    latency_ms_p95: float  # p95 at that rate
    sla_p95_ms: float  # the SLA the steps were judged against
    hardware: str  # "cpu" or a catalog GPU key
    measured_at: str


def measured_capacity(entry: dict | None, sla_p95_ms: float | None = None) -> MeasuredCapacity | None:
    """The best load-test step within `sla_p95_ms` (default: the SLA the test used); None if none was."""
    if not entry:
        return None
    sla = sla_p95_ms if sla_p95_ms is not None else entry["sla_p95_ms"]
    good = [
        s
        for s in entry["steps"]
        if s["sent"] and s["ok"] == s["sent"] and s["latency_ms_p95"] is not None and s["latency_ms_p95"] <= sla
    ]
    if not good:
        return None
    best = max(good, key=lambda s: s["rate_per_s"])
    return MeasuredCapacity(
        best["rate_per_s"] * entry.get("texts_per_request", 1),
        best["latency_ms_p95"],
        sla,
        entry.get("hardware") or "unknown",
        entry.get("measured_at", ""),
    )


def answered(entry: dict) -> bool:
    """Whether a load test got any answer at all (a wrong API key or a dead server gets none: no measurement)."""
    return any(step["ok"] for step in entry["steps"])


def top_rate(entry: dict) -> float:
    """The highest rate a load test tried, in items/s."""
    return max(step["rate_per_s"] for step in entry["steps"]) * entry.get("texts_per_request", 1)


def is_lower_bound(measured: MeasuredCapacity | None, entry: dict) -> bool:
    """Every rate tried met the SLA: the capacity is at least the top rate, not that rate."""
    return measured is not None and measured.items_per_s >= top_rate(entry)


def estimated_capacity(latency_ms_by_batch: dict, sla_p95_ms: float) -> float | None:
    """The capacity plan's rule (p95 <= 2 x batch service time, 70% utilisation) over batch latencies:
    items/s one replica serves within the SLA, or None if no batch meets it."""
    feasible = [int(b) / (ms / 1000) for b, ms in latency_ms_by_batch.items() if ms and 2 * ms <= sla_p95_ms]
    return max(feasible) * TARGET_UTILISATION if feasible else None


def estimated_capacity_here(items_per_s_by_batch: dict, sla_p95_ms: float) -> float | None:
    """The same rule over a trial's in-process batch timings on its own hardware (items/s by batch size)."""
    rates = items_per_s_by_batch or {}
    return estimated_capacity({b: 1000 * int(b) / rate for b, rate in rates.items() if rate}, sla_p95_ms)
