"""A wrapper over any weighted strategy that caps the weight one client declares.

FedAvg weights each reply by the ``num-examples`` the client reports, and
nothing checks that number: a client declaring 10^9 examples sets the mean
alone. This wrapper lowers every declared weight above ``max_weight``
(``aggregation.max_weight``) to it before the inner strategy weights by it,
and records each cap in the round log (results.json). Replies must be well-formed (put
UpdateValidator outside this wrapper).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from logging import WARNING

from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.strategies.reply_records import metric_items
from aureon.strategies.wrapper import StrategyWrapper
from aureon.tracking.round_log import RoundLog


def capped_weight(declared: float, max_weight: float) -> float:
    """``declared`` lowered to ``max_weight``; an integral cap stays an int, like the counts it replaces."""
    if declared <= max_weight:
        return declared
    return int(max_weight) if float(max_weight).is_integer() else max_weight


class WeightCap(StrategyWrapper):
    """Delegates to ``inner`` after capping each reply's ``num-examples`` at ``max_weight``."""

    def __init__(self, inner: Strategy, *, max_weight: float, round_log: RoundLog) -> None:
        if not (math.isfinite(max_weight) and max_weight > 0):
            raise ValueError(f"max_weight must be a finite number > 0, got {max_weight!r}")
        super().__init__(inner)
        self.max_weight = max_weight
        self.round_log = round_log

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        return self.inner.aggregate_train(server_round, [self._cap(server_round, r) for r in replies])

    def _cap(self, server_round: int, reply: Message) -> Message:
        """``reply`` itself, or a copy whose MetricRecords carry the capped weight."""
        if reply.has_error() or not reply.has_content():
            return reply
        content = reply.content
        declared = _declared_weight(content)
        if declared is None or declared <= self.max_weight:
            return reply
        used = capped_weight(declared, self.max_weight)
        node_id = reply.metadata.src_node_id
        log(
            WARNING,
            "round %d: node %d declared %s examples; aggregated with weight %s (aggregation.max_weight)",
            server_round,
            node_id,
            declared,
            used,
        )
        self.round_log.cap(server_round, node_id=node_id, declared=float(declared), used=float(used))
        copy = RecordDict(dict(content.items()))
        for name, record in metric_items(content):
            if keys.NUM_EXAMPLES in record:
                metrics = MetricRecord(dict(record.items()))
                metrics[keys.NUM_EXAMPLES] = used
                copy[name] = metrics
        return Message(content=copy, metadata=reply.metadata)  # type: ignore[call-overload]


def _declared_weight(content: RecordDict) -> float | None:
    """The first numeric ``num-examples`` among the reply's MetricRecords (UpdateValidator checked it)."""
    for _, record in metric_items(content):
        value = record.get(keys.NUM_EXAMPLES)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return None
