"""The base of every strategy wrapper: pass each call through to the inner strategy.

A wrapper (validation, weight cap, norm bounding, secure aggregation, compressed
transport, recording) overrides only the calls it changes, so that a new hook in Flower's
Strategy needs one delegation here, not one per wrapper.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aureon.tracking.round_log import RoundLog


class StrategyWrapper(Strategy):
    """Delegates every call to ``inner``."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner

    def summary(self) -> None:
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        return self.inner.aggregate_train(server_round, replies)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return self.inner.aggregate_evaluate(server_round, replies)


class ReplyCheckingWrapper(StrategyWrapper):
    """A wrapper that judges replies against the weights sent for training this round.

    It reads them from the round log's one shared copy, so wrappers stacked
    around one strategy decode the global model once per round between them.
    """

    def __init__(self, inner: Strategy, *, round_log: RoundLog) -> None:
        super().__init__(inner)
        self.round_log = round_log

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.round_log.share_weights(server_round, arrays)
        return self.inner.configure_train(server_round, arrays, config, grid)

    def sent_weights(self, server_round: int) -> dict[str, np.ndarray] | None:
        """The weights sent for ``server_round`` (None if this wrapper sent none that round)."""
        return self.round_log.weights_sent(server_round)


def strategy_chain(strategy: Strategy) -> Iterator[Any]:
    """The strategy and every strategy it wraps (wrappers keep theirs in ``.inner``)."""
    current: Any = strategy
    seen = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "inner", None)
