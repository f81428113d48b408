"""The base of every strategy wrapper: pass each call through to the inner strategy.

A wrapper (validation, norm bounding, secure aggregation, compressed transport,
recording) overrides only the calls it changes, so that a new hook in Flower's
Strategy needs one delegation here, not one per wrapper.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy


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


class ReferenceKeepingWrapper(StrategyWrapper):
    """A wrapper that judges replies against the weights sent for training this round."""

    def __init__(self, inner: Strategy) -> None:
        super().__init__(inner)
        self._reference: dict[int, dict[str, np.ndarray]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._reference = {server_round: {name: a.numpy() for name, a in arrays.items()}}
        return self.inner.configure_train(server_round, arrays, config, grid)
