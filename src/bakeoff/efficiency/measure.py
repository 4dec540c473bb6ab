"""Measure a stretch of work: wall time and peak memory (process RSS on CPU, CUDA max allocated on GPU).

`ru_maxrss` is the process's lifetime peak, useless for the second trial of a run, so RSS is sampled
by a background thread instead (every 20 ms: fine-tuning steps last seconds, so peaks are not missed).
"""

from __future__ import annotations

import threading
import time

import psutil
import torch

SAMPLE_EVERY_S = 0.02


class PeakMemory:
    """Context manager: `.peak_mb` after exit (RSS of this process, or CUDA max allocated)."""

    def __init__(self, device: str = "cpu"):
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, psutil.Process().memory_info().rss / 2**20)


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started
