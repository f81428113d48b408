"""Where a round's time goes: seconds per phase, each second counted in exactly one phase.

A round's phases nest (decoding a reply happens inside aggregation, counting
bytes inside configuring); the clock charges the time spent in a nested
phase to that phase alone and pauses the enclosing one meanwhile, so the
phases of a round add up to the time measured, with nothing counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

CONFIGURE = "configure"  # sampling and building the train messages (SecAgg: its setup exchanges)
TRAIN = "train"  # waiting for the clients' train replies
SERIALIZE = "serialize"  # codecs' encoding and decoding, weights read out of their records
COUNT_BYTES = "count_bytes"  # serializing each message once more, as Flower does, to count its bytes
AGGREGATE = "aggregate"  # validation, bounding, (secure) aggregation
EVALUATE = "evaluate"  # the server's evaluation of the new model
CHECKPOINT = "checkpoint"  # saving the state after the round

PHASES = (CONFIGURE, TRAIN, SERIALIZE, COUNT_BYTES, AGGREGATE, EVALUATE, CHECKPOINT)


class PhaseClock:
    """Seconds spent in each phase; a phase entered inside another is not counted twice."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds: dict[str, float] = {}  # a phase appears once time is charged to it
        self._clock = clock
        self._stack: list[str] = []
        self._mark = 0.0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the time inside this block to ``name`` (minus the phases nested in it)."""
        if name not in PHASES:
            raise ValueError(f"unknown round phase {name!r}; expected one of {list(PHASES)}")
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def _switch(self) -> None:
        """Charge the time since the last switch to the phase running now."""
        now = self._clock()
        if self._stack:
            running = self._stack[-1]
            self.seconds[running] = self.seconds.get(running, 0.0) + now - self._mark
        self._mark = now
