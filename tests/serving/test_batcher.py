"""The micro-batcher: requests queued during a forward pass share the next one; a lone request is not held."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from aureon.serving.batcher import MicroBatcher, QueueFull


class GatedForward:
    """Doubles its input; the first call blocks until released, so that later requests pile up."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        self.sizes.append(len(rows))
        if len(self.sizes) == 1:
            self.entered.set()
            self.release.wait(10)
        return rows * 2


def rows(value: float, n: int = 1) -> np.ndarray:
    return np.full((n, 3), value, dtype=np.float32)


def test_requests_waiting_during_a_pass_share_the_next_one_and_get_their_own_rows() -> None:
    forward = GatedForward()
    batcher = MicroBatcher(forward, max_batch=64, max_wait_s=0.0, max_queue=100, torch_threads=1)

    async def scenario() -> list[np.ndarray]:
        batcher.start()
        try:
            first = asyncio.create_task(batcher.submit(rows(1.0)))
            await asyncio.to_thread(forward.entered.wait, 10)
            rest = [asyncio.create_task(batcher.submit(rows(float(v), n=v))) for v in (2, 3, 4)]
            await asyncio.sleep(0.05)  # let them reach the queue
            forward.release.set()
            return await asyncio.gather(first, *rest)
        finally:
            batcher.stop()

    answers = asyncio.run(scenario())
    assert forward.sizes == [1, 2 + 3 + 4]
    for answer, value in zip(answers, (1, 2, 3, 4), strict=True):
        np.testing.assert_array_equal(answer, rows(2.0 * value, n=value if value > 1 else 1))


def test_a_lone_request_is_not_held_for_max_wait() -> None:
    calls: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return x

    batcher = MicroBatcher(forward, max_batch=64, max_wait_s=30.0, max_queue=100, torch_threads=1)

    async def scenario() -> None:
        batcher.start()
        try:
            for _ in range(3):
                await asyncio.wait_for(batcher.submit(rows(1.0)), 20)
        finally:
            batcher.stop()

    # with a 30 s max_wait, a batcher that waited for company would hit the 20 s wait_for first
    asyncio.run(scenario())
    assert calls == [1, 1, 1]


def test_rows_beyond_max_queue_are_refused() -> None:
    forward = GatedForward()
    batcher = MicroBatcher(forward, max_batch=4, max_wait_s=0.0, max_queue=3, torch_threads=1)

    async def scenario() -> None:
        batcher.start()
        try:
            running = asyncio.create_task(batcher.submit(rows(1.0)))
            await asyncio.to_thread(forward.entered.wait, 10)  # the pass is busy; what follows waits
            waiting = asyncio.create_task(batcher.submit(rows(1.0, n=3)))
            await asyncio.sleep(0)
            with pytest.raises(QueueFull, match="serving.max_queue=3"):
                await batcher.submit(rows(1.0))
            forward.release.set()
            await asyncio.gather(running, waiting)
        finally:
            forward.release.set()
            batcher.stop()

    asyncio.run(scenario())
