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
    """Context manager: `.peak_mb` after exit (RSS of this process, or CUDA max allocated).

    Nests: an inner one measures a phase (e.g. fine-tuning without loading). Each measures its own stretch,
    and an inner one's peak is handed to the one around it on exit. On CUDA, where there is one peak
    counter, an inner one first hands the outer the peak so far (loading a 4-bit model can peak above its
    training), then resets the counter; on CPU each has its own sampler (two samplers do not sample the
    same instants). `reset=False` keeps an outermost CUDA counter running from before it."""

    _active = threading.local()  # the PeakMemory objects entered on this thread, outermost first

    def __init__(self, device: str = "cpu", reset: bool = True):
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.reset = reset
        self.peak_mb = 0.0
        self.start_mb = 0.0  # at entry: RSS (the interpreter, libraries, earlier trials' heap), or CUDA allocated
        self._nested_mb = 0.0  # the peaks of PeakMemory objects nested in this one (their own samplers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> PeakMemory:
        stack = self._stack()
        stack.append(self)
        if self.cuda:
            self.start_mb = torch.cuda.memory_allocated() / 2**20
            if len(stack) > 1:  # the outer one's peak so far, before the counter restarts for this stretch
                outer = stack[-2]
                outer._nested_mb = max(outer._nested_mb, torch.cuda.max_memory_allocated() / 2**20)
            if self.reset or len(stack) > 1:
                torch.cuda.reset_peak_memory_stats()
        else:
            self.start_mb = psutil.Process().memory_info().rss / 2**20
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.peak_mb = max(torch.cuda.max_memory_allocated() / 2**20, self._nested_mb)
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, psutil.Process().memory_info().rss / 2**20, self._nested_mb)
        stack = self._stack()
        stack.remove(self)
        if stack:
            stack[-1]._nested_mb = max(stack[-1]._nested_mb, self.peak_mb)

    @classmethod
    def _stack(cls) -> list[PeakMemory]:
        if not hasattr(cls._active, "stack"):
            cls._active.stack = []
        return cls._active.stack


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started
