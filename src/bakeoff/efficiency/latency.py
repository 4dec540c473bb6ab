"""Inference latency and throughput of a scoring function, measured the way a service would see them.

Batch-1 latency: each of `repeats` items scored alone, after `warmup` untimed calls (first calls pay for
allocation and kernel selection); p50/p95/p99 over the repeats, all repeats recorded. With `budget_s`
the repeats stop once they have taken that long (at least `MIN_REPEATS` are kept): a model at 1 s per
item costs seconds, not a fixed dozen repeats. Throughput: the
same sample scored at each batch size; the best batch is the one with the most items per second. A
trial that scores its test set at a fixed batch size passes no batch sizes here and records that pass
instead (`with_pass_throughput`): every test item, every batch shape, and no second scoring of a sample.
"""

from __future__ import annotations

import time

import numpy as np

from bakeoff.evaluation.decode import MIN_REPEATS  # one floor for every latency budget; see there


def measure_scoring(
    score, items: list, repeats: int = 12, warmup: int = 2, batch_sizes=(4, 16), budget_s: float | None = None
) -> dict:
    """`score(items, batch_size)` scores a list of items; returns latency percentiles and throughput."""
    if not items:
        return {}
    for item in items[:warmup]:
        score([item], 1)
    latencies_ms = []
    for i in range(repeats):
        if budget_s is not None and len(latencies_ms) >= MIN_REPEATS and sum(latencies_ms) >= 1000 * budget_s:
            break
        item = items[(warmup + i) % len(items)]
        started = time.perf_counter()
        score([item], 1)
        latencies_ms.append(1000 * (time.perf_counter() - started))
    sample = items[: max(batch_sizes, default=1)]
    throughput = {1: 1000 / float(np.mean(latencies_ms))}
    for batch in batch_sizes:
        started = time.perf_counter()
        score(sample, batch)
        throughput[batch] = len(sample) / (time.perf_counter() - started)
    return _with_best(
        {
            "latency_ms_p50": float(np.percentile(latencies_ms, 50)),
            "latency_ms_p95": float(np.percentile(latencies_ms, 95)),
            "latency_ms_p99": float(np.percentile(latencies_ms, 99)),
            "latency_ms_repeats": latencies_ms,
            "items_per_s_by_batch": {str(k): v for k, v in throughput.items()},
        }
    )


def with_pass_throughput(serving: dict, batch_size: int, items: int, seconds: float) -> dict:
    """`serving` with the throughput of a whole scoring pass (`items` in `seconds` at `batch_size`) added."""
    if not serving or items <= 0 or seconds <= 0:
        return serving
    by_batch = dict(serving["items_per_s_by_batch"]) | {str(batch_size): items / seconds}
    return _with_best(serving | {"items_per_s_by_batch": by_batch})


def _with_best(serving: dict) -> dict:
    rates = serving["items_per_s_by_batch"]
    best = max(rates, key=rates.get)
    return serving | {"best_batch": int(best), "items_per_s_at_best": float(rates[best])}
