"""How many torch threads to use on a CPU right now: probe the op mix of a small decoder, keep the fastest.

A torch op on N intra-op threads waits for all N at its end. When another process holds one of the cores,
the thread on that core runs only when the scheduler gives it a slice, so every op, however small, waits
a slice: on this 2-core machine with one core busy, a Gemma-3-270M LoRA step took 15-33 s on 2 threads
and 2.4-4.0 s on 1 (SmolLM2-135M: 20-31 s against 2.2-4.1 s; `bench/step_vs_estimate.py`, one process,
interleaved). That is the 12x-its-estimate step of issue 20. On an idle machine 2 threads are faster, so
the choice is measured, not fixed: before each LLM trial, a few milliseconds of decoder-like ops
(matmuls of a few hundred rows, an RMS norm, a gated activation) run at each thread count in turn,
three times; fewer threads than all are chosen only when their median is 1.25x faster.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

PROBE_ROUNDS = 3
# Fewer threads than all must be this much faster to be chosen: on an idle machine all threads win, and a
# noisy probe must not halve a run's speed. Under contention the gap is 5-20x, far past this margin.
FEWER_THREADS_MARGIN = 1.25


def _decoder_like_ops(x: torch.Tensor, up: torch.Tensor, down: torch.Tensor, layers: int = 3) -> None:
    for _ in range(layers):
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        gate = h @ up
        x = x + (torch.nn.functional.silu(gate) * gate) @ down


def probe_threads(max_threads: int | None = None) -> tuple[int, dict[int, float]]:
    """(chosen thread count, median probe ms by thread count); leaves torch at the chosen count."""
    max_threads = max_threads or os.cpu_count() or 1
    candidates = sorted({1, max_threads} | ({max_threads // 2} if max_threads >= 4 else set()))
    generator = torch.Generator().manual_seed(0)
    # 192 x 512 activations, as a short training row: above torch's parallel grain (32k elements), so
    # elementwise ops use every thread, and matmuls large enough that all threads win on an idle machine.
    x = torch.randn(192, 512, generator=generator)
    up, down = torch.randn(512, 1024, generator=generator) / 23, torch.randn(1024, 512, generator=generator) / 32
    times: dict[int, list[float]] = {threads: [] for threads in candidates}
    with torch.inference_mode():
        for threads in candidates:  # warm-up: each thread pool started once
            torch.set_num_threads(threads)
            _decoder_like_ops(x, up, down, layers=1)
        for _ in range(PROBE_ROUNDS):
            for threads in candidates:
                torch.set_num_threads(threads)
                started = time.perf_counter()
                _decoder_like_ops(x, up, down)
                times[threads].append(1000 * (time.perf_counter() - started))
    medians = {threads: statistics.median(values) for threads, values in times.items()}
    best = choose_threads(medians, max_threads)
    torch.set_num_threads(best)
    return best, medians


def choose_threads(probe_ms: dict[int, float], max_threads: int) -> int:
    """All threads, unless fewer were FEWER_THREADS_MARGIN times faster in the probe."""
    fastest = min(probe_ms, key=probe_ms.get)
    return fastest if probe_ms[fastest] * FEWER_THREADS_MARGIN < probe_ms[max_threads] else max_threads
