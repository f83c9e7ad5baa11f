"""Dynamic batching: concurrent requests share one encoder pass.

Each caller awaits ``embed(texts)``; a single worker task takes the first waiting request,
gathers whatever else arrives within ``max_wait_ms`` (up to ``max_batch`` texts), embeds
the union once in a worker thread (through the Embedder and its cache) and hands every
caller its rows. With one client the wait bound is the only added latency.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np


class DynamicBatcher:
    def __init__(self, embedder, *, max_batch: int = 256, max_wait_ms: float = 5.0) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self.batches = 0
        self.texts = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    async def embed(self, texts: list[str]) -> np.ndarray:
        if self._queue is None:  # not started (e.g. used outside the app's lifespan)
            return await asyncio.to_thread(self.embedder.embed, texts)
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(item)
                size += len(item[0])
            texts = [t for item, _ in batch for t in item]
            try:
                X = await asyncio.to_thread(self.embedder.embed, texts)
            except Exception as e:  # hand the error to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            self.batches += 1
            self.texts += len(texts)
            start = 0
            for item, future in batch:
                if not future.done():
                    future.set_result(X[start : start + len(item)])
                start += len(item)
