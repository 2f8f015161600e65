"""Micro-batching: requests that arrive within a few milliseconds of each other are processed in one
call (one forward pass, one ``generate``): on a worker thread that owns the model (:class:`MicroBatcher`,
for generation, which takes seconds) or on the event loop (:class:`LoopBatcher`, for scoring).

Kept by hand rather than taken from a library: it is 50 lines, and the serving libraries that batch
(Ray Serve, BentoML, Triton) bring a runtime of their own.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

log = logging.getLogger(__name__)
Request = TypeVar("Request")
Result = TypeVar("Result")


class MicroBatcher(Generic[Request, Result]):
    """``process(requests) -> results`` (same length, same order) runs on a single worker thread, started
    by the first request (and again after :meth:`stop`, so an app can be served more than once)."""

    def __init__(self, process: Callable[[Sequence[Request]], Sequence[Result]], max_batch: int = 16,
                 wait: float = 0.02, name: str = "lucidrec-batcher"):
        self.process, self.max_batch, self.wait, self.name = process, max_batch, wait, name
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, request: Request) -> Future:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        future: Future = Future()
        self._queue.put((request, future))
        return future

    def __call__(self, request: Request) -> Result:
        return self.submit(request).result()

    async def run(self, request: Request) -> Result:
        return await asyncio.wrap_future(self.submit(request))

    def _gather(self, first) -> list:
        batch = [first]
        deadline = time.monotonic() + self.wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stop() was called: finish this batch, then let the loop see the sentinel
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = self._gather(item)
            try:
                results = self.process([request for request, _ in batch])
                for (_, future), result in zip(batch, results, strict=True):
                    future.set_result(result)
            except Exception as exc:  # a failing batch answers its requests with the error; the worker lives on
                log.exception("batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout=5)
            self._thread = None



class LoopBatcher(Generic[Request, Result]):
    """``process(requests) -> results`` run on the event loop itself, for work of a few milliseconds
    (scoring): every request that arrived while the loop was busy is processed in one call, with no
    hand-off to a thread and back (which cost more CPU than scoring a cached user). ``wait`` > 0 waits
    that long for more requests first."""

    def __init__(self, process: Callable[[Sequence[Request]], Sequence[Result]], max_batch: int = 16,
                 wait: float = 0.0):
        self.process, self.max_batch, self.wait = process, max_batch, wait
        self._pending: list = []
        self._scheduled = False

    async def run(self, request: Request) -> Result:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((request, future))
        if not self._scheduled:
            self._scheduled = True
            if self.wait > 0:
                loop.call_later(self.wait, self._drain)
            else:
                loop.call_soon(self._drain)  # after the callbacks already ready: their requests join this batch
        return await future

    def _drain(self) -> None:
        self._scheduled = False
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            live = [(request, future) for request, future in batch if not future.done()]  # a client may have left
            if not live:
                continue
            try:
                results = self.process([request for request, _ in live])
                for (_, future), result in zip(live, results, strict=True):
                    future.set_result(result)
            except Exception as exc:  # a failing batch answers its requests with the error
                log.exception("batch of %d failed", len(live))
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)

    def stop(self) -> None:
        """Nothing runs between requests; kept so both batchers stop alike."""
