"""Adaptive batching with MLServer's semantics (fixed timer) and one batch in flight per replica.

A batch opens when the batcher takes its first request and closes after ``max_batch_time`` or at
``max_batch_size`` requests, whichever comes first; requests already queued are taken even after the
deadline. Batching is on only when ``max_batch_size > 1`` and ``max_batch_time > 0``. Limits and the
model can change at run time: the next batch uses the new ones, batches in flight finish on the old.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np


class Runner(Protocol):
    """Runs one merged batch: input arrays by name in, (name, array) outputs out, one row per input row."""

    def run(self, feed: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]: ...


class Expired(Exception):
    """The request's deadline (the router's drop limit) passed before its batch ran: it was not run."""


@dataclass
class _Item:
    feed: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future
    deadline: float | None = None
    """Wall-clock time (``time.time()``) after which running it is wasted work."""
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class BatchStats:
    """One executed batch: requests, rows, seconds in the model, and the longest queue wait."""

    requests: int
    rows: int
    run_s: float
    wait_s: float


class AdaptiveBatcher:
    """Collects requests into batches and runs them one at a time on a worker thread."""

    def __init__(self, runner: Runner, max_batch_size: int = 1, max_batch_time_s: float = 0.0,
                 on_batch: Callable[[BatchStats], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runner = runner
        self.max_batch_size = max_batch_size
        self.max_batch_time_s = max_batch_time_s
        self.on_batch = on_batch
        self.clock = clock
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ort")
        self._task: asyncio.Task | None = None
        self.in_flight = 0

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1 and self.max_batch_time_s > 0

    @property
    def queue_length(self) -> int:
        return self._queue.qsize()

    def set_limits(self, max_batch_size: int, max_batch_time_s: float) -> None:
        """New limits for the next batch (the one being collected keeps its window)."""
        self.max_batch_size, self.max_batch_time_s = max_batch_size, max_batch_time_s

    def swap(self, runner: Runner) -> Runner:
        """Serve the next batches with ``runner``; returns the old one (batches in flight keep it)."""
        old, self.runner = self.runner, runner
        return old

    async def submit(self, feed: dict[str, np.ndarray], deadline: float | None = None) -> list[tuple[str, np.ndarray]]:
        """The outputs for this request's rows, once its batch has run; :class:`Expired` when ``deadline``
        (wall-clock seconds) passed before that."""
        rows = int(next(iter(feed.values())).shape[0]) if feed else 0
        item = _Item(feed, rows, asyncio.get_running_loop().create_future(), deadline)
        self._queue.put_nowait(item)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return await item.future

    async def _collect(self) -> list[_Item]:
        batch = [await self._queue.get()]
        size, window = self.max_batch_size, self.max_batch_time_s
        if not self.enabled:
            return batch
        start = self.clock()
        while len(batch) < size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = window - (self.clock() - start)  # from the window's start: MLServer's fixed timer
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        while not self._queue.empty():
            batch = await self._collect()
            await self._run(batch)

    async def _run(self, batch: list[_Item]) -> None:
        now = time.time()
        for item in batch:  # as IPA's model checks its drop limit before inference
            if item.deadline is not None and now >= item.deadline and not item.future.done():
                item.future.set_exception(Expired("drop-limit: the deadline passed in the queue"))
        batch = [item for item in batch if not item.future.done()]
        if not batch:
            return
        runner = self.runner
        feed = merge([item.feed for item in batch])
        started = self.clock()
        wait = max(started - item.queued_at for item in batch)
        self.in_flight += len(batch)
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(self._pool, runner.run, feed)
            parts = split(outputs, [item.rows for item in batch])
        except Exception as exc:  # the model failed: every request of the batch gets the error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self.in_flight -= len(batch)
        if self.on_batch is not None:
            self.on_batch(BatchStats(len(batch), sum(i.rows for i in batch), self.clock() - started, wait))
        for item, part in zip(batch, parts):
            if not item.future.done():
                item.future.set_result(part)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until the queue is empty and no batch runs."""
        deadline = time.monotonic() + timeout_s
        while (not self._queue.empty() or self.in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(ConnectionAbortedError("the server is shutting down"))
        self._pool.shutdown(wait=False, cancel_futures=True)


def merge(feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Requests concatenated along the batch dimension, input by input."""
    if len(feeds) == 1:
        return feeds[0]
    return {name: np.concatenate([f[name] for f in feeds], axis=0) for name in feeds[0]}


def split(outputs: list[tuple[str, np.ndarray]], rows: list[int]) -> list[list[tuple[str, np.ndarray]]]:
    """Each request's rows of every output, in order; an output without one row per input row is an error."""
    total = sum(rows)
    for name, array in outputs:
        if array.ndim == 0 or array.shape[0] != total:
            raise ValueError(f"output {name!r} has shape {list(array.shape)}, not one row per input row ({total})")
    parts: list[list[tuple[str, Any]]] = []
    start = 0
    for n in rows:
        parts.append([(name, array[start:start + n]) for name, array in outputs])
        start += n
    return parts
