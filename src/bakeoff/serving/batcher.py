"""Dynamic micro-batching: requests that arrive within a short window are scored in one call.

A label-scoring forward pass over 8 prompts costs far less than 8 passes over one (the weights are read
once, and the shared instruction prefix is run once per batch), so under load the server trades a few
milliseconds of waiting for several times the throughput. Scoring is synchronous torch work: it runs in
one worker thread, so the event loop keeps accepting requests (and the queue keeps filling) meanwhile.

A request's texts are never split across batches; a batch takes whole requests while the total stays at
most `max_batch` texts (a single larger request is scored alone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchSettings:
    """How long to wait for company and how much to take."""

    max_batch: int = 16  # texts scored together at most
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[list[str]], np.ndarray],
        settings: BatchSettings,
        on_batch: Callable[[int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ):
        self.predict = predict
        self.settings = settings
        self.on_batch = on_batch or (lambda size: None)
        self.on_queue = on_queue or (lambda depth: None)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bakeoff-score")
        self._held: tuple | None = None  # a request that did not fit the previous batch: it heads the next one

    async def submit(self, texts: list[str]) -> np.ndarray:
        """Probabilities [len(texts), K] for one request, scored with whatever else arrives meanwhile."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        self.on_queue(self.depth)
        return await future

    @property
    def depth(self) -> int:
        return self.queue.qsize() + (self._held is not None)

    async def run(self) -> None:
        """Serve batches until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch(loop)
            self.on_queue(self.depth)
            texts = [text for request, _ in batch for text in request]
            self.on_batch(len(texts))
            try:
                probs = await loop.run_in_executor(self.executor, self.predict, texts)
            except Exception as err:  # noqa: BLE001 - the failure belongs to the requests, not the loop
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            start = 0
            for request, future in batch:
                if not future.done():  # a client that went away cancelled its future
                    future.set_result(probs[start : start + len(request)])
                start += len(request)

    async def _next_batch(self, loop) -> list[tuple]:
        first = self._held if self._held is not None else await self.queue.get()
        self._held = None
        batch, count = [first], len(first[0])
        deadline = loop.time() + self.settings.max_wait_ms / 1000
        while count < self.settings.max_batch:
            try:
                if self.queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                else:
                    item = self.queue.get_nowait()
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            if count + len(item[0]) > self.settings.max_batch:
                self._held = item
                break
            batch.append(item)
            count += len(item[0])
        return batch

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
