"""Concurrent requests answered by one forward pass: a queue and one inference thread.

The event loop only enqueues rows and awaits a future; the thread takes
every waiting request up to ``max_batch`` rows, runs the model once over all
of them, and hands each request its slice. It waits up to ``max_wait`` for
more to join only when the previous pass served several requests: a lone
client would pay that wait on every request and gain nothing from it. torch runs on that thread alone with a fixed
thread count, so a slow forward pass never blocks the loop that accepts
connections and answers /health.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


class QueueFull(Exception):
    """More rows are waiting than the server accepts (serving.max_queue)."""


@dataclass
class _Job:
    rows: np.ndarray
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop


class MicroBatcher:
    """Runs ``forward`` on batches of queued rows in its own thread; ``submit`` is awaited from the loop."""

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        torch_threads: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._forward = forward
        self._max_batch = max_batch
        self._max_wait = max_wait_s
        self._max_queue = max_queue
        self._torch_threads = torch_threads
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="aureon-inference", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._started = False

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        """The model's output for ``rows``, computed in a batch with whatever else is waiting."""
        with self._lock:
            if self._queued_rows + len(rows) > self._max_queue:
                raise QueueFull(f"{self._queued_rows} rows are already waiting (serving.max_queue={self._max_queue})")
            self._queued_rows += len(rows)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.put(_Job(rows=rows, future=future, loop=loop))
        return await future

    # ------------------------------------------------------------ the inference thread
    def _run(self) -> None:
        torch.set_num_threads(self._torch_threads)
        carry: _Job | None = None
        concurrent = False  # the previous pass served more than one request
        while True:
            first = carry or self._queue.get()
            carry = None
            if first is None:
                return
            jobs, size = [first], len(first.rows)
            deadline = time.monotonic() + (self._max_wait if concurrent else 0.0)
            while size < self._max_batch:
                remaining = deadline - time.monotonic()
                try:
                    job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)
                    break
                if size + len(job.rows) > self._max_batch:
                    carry = job  # first of the next batch
                    break
                jobs.append(job)
                size += len(job.rows)
            concurrent = len(jobs) > 1 or carry is not None
            self._answer(jobs, size)

    def _answer(self, jobs: list[_Job], size: int) -> None:
        with self._lock:
            self._queued_rows -= size
        try:
            rows = jobs[0].rows if len(jobs) == 1 else np.concatenate([j.rows for j in jobs])
            out = self._forward(rows)
            if self._on_batch is not None:
                self._on_batch(size)
        except Exception as err:  # the model failed: every request of the batch hears why
            for job in jobs:
                job.loop.call_soon_threadsafe(_set_exception, job.future, err)
            return
        start = 0
        for job in jobs:
            part = out[start : start + len(job.rows)]
            start += len(job.rows)
            job.loop.call_soon_threadsafe(_set_result, job.future, part)


def _set_result(future: asyncio.Future[np.ndarray], value: np.ndarray) -> None:
    if not future.done():  # the client may have gone and its request been cancelled
        future.set_result(value)


def _set_exception(future: asyncio.Future[np.ndarray], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
