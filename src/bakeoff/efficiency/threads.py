"""How many torch threads to use on a CPU right now: probe the op mix of a small decoder, keep the fastest.

A torch op on N intra-op threads waits for all N at its end. When another process holds one of the cores,
the thread on that core runs only when the scheduler gives it a slice, so every op, however small, waits
a slice: on this 2-core machine with one core busy, a Gemma-3-270M LoRA step took 15-33 s on 2 threads
and 2.4-4.0 s on 1 (SmolLM2-135M: 20-31 s against 2.2-4.1 s; `bench/step_vs_estimate.py`, one process,
interleaved). That is the 12x-its-estimate step of issue 20. On an idle machine 2 threads are faster, so
the choice is measured, not fixed: before each LLM trial, a few milliseconds of decoder-like ops
(matmuls of a few hundred rows, an RMS norm, a gated activation) run at each thread count in turn,
twice, and the fastest median wins.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

PROBE_ROUNDS = 3


def _decoder_like_ops(x: torch.Tensor, up: torch.Tensor, down: torch.Tensor, layers: int = 3) -> None:
    for _ in range(layers):
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        gate = h @ up
        x = x + (torch.nn.functional.silu(gate) * gate) @ down


def probe_threads(max_threads: int | None = None) -> tuple[int, dict[int, float]]:
    """(fastest thread count, median probe ms by thread count); leaves torch at the fastest."""
    max_threads = max_threads or os.cpu_count() or 1
    candidates = sorted({1, max_threads} | ({max_threads // 2} if max_threads >= 4 else set()))
    generator = torch.Generator().manual_seed(0)
    # 128 x 384 activations: above torch's parallel grain (32k elements), so elementwise ops use every thread.
    x = torch.randn(128, 384, generator=generator)
    up, down = torch.randn(384, 768, generator=generator) / 20, torch.randn(768, 384, generator=generator) / 28
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
    best = min(medians, key=medians.get)
    torch.set_num_threads(best)
    return best, medians
