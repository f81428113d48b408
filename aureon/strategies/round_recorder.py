"""A wrapper over any strategy that records what each client sent and received."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.strategies.wrapper import StrategyWrapper
from aureon.tracking.records import ClientRound, Failure
from aureon.tracking.wire import message_wire_bytes


def _number(metrics: MetricRecord, key: str) -> float | None:
    """A finite scalar metric, or None (a malformed reply must not crash the recorder)."""
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _reply_order(message: Message) -> tuple[int, float]:
    """Sort replies by partition id so aggregation sums in the same order every run."""
    if message.has_error() or not message.has_content():
        return (1, message.metadata.src_node_id)
    metrics = next(iter(message.content.metric_records.values()), MetricRecord())
    pid = _number(metrics, keys.PARTITION_ID)
    return (0, -1 if pid is None else pid)


class RoundRecorder(StrategyWrapper):
    """Delegates every hook to ``inner``; records bytes, metrics and failures per round.

    A cross-cutting concern, so it wraps a strategy (as Flower's DP wrappers do)
    instead of living inside each one.
    """

    def __init__(self, inner: Strategy) -> None:
        super().__init__(inner)
        self._bytes_down: dict[int, int] = {}
        self._round_started: dict[int, float] = {}
        self._clients: dict[int, list[ClientRound]] = {}
        self._failures: dict[int, list[Failure]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._round_started[server_round] = time.monotonic()
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        self._bytes_down = {m.metadata.dst_node_id: message_wire_bytes(m) for m in messages}
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        ordered = sorted(replies, key=_reply_order)
        clients, failures = [], []
        for reply in ordered:
            node_id = reply.metadata.src_node_id
            if reply.has_error():
                failures.append(Failure(node_id=node_id, reason=reply.error.reason or "error"))
                continue
            metrics = next(iter(reply.content.metric_records.values()), MetricRecord())
            partition_id = _number(metrics, keys.PARTITION_ID)
            num_examples = _number(metrics, keys.NUM_EXAMPLES)
            train_loss = _number(metrics, keys.TRAIN_LOSS)
            clients.append(
                ClientRound(
                    partition_id=-1 if partition_id is None else int(partition_id),
                    node_id=node_id,
                    num_examples=None if num_examples is None else int(num_examples),
                    train_loss=train_loss,
                    epsilon=_number(metrics, keys.EPSILON),
                    bytes_up=message_wire_bytes(reply),
                    bytes_down=self._bytes_down.get(node_id, 0),
                )
            )
        self._clients[server_round] = clients
        self._failures[server_round] = failures
        return self.inner.aggregate_train(server_round, ordered)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return self.inner.aggregate_evaluate(server_round, list(replies))

    def pop_round(self, server_round: int) -> tuple[list[ClientRound], list[Failure], float]:
        """What was recorded for ``server_round`` and the seconds since it started."""
        started = self._round_started.pop(server_round, time.monotonic())
        return (
            self._clients.pop(server_round, []),
            self._failures.pop(server_round, []),
            time.monotonic() - started,
        )
