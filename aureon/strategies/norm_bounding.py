"""A wrapper over any strategy that bounds the L2 norm of each client's update.

Norm bounding (Sun et al., 2019, "Can you really backdoor federated
learning?") limits how far one client can move the global model: an update
u = w - w_global with ||u|| > max_norm is replaced by u * max_norm / ||u||
before the inner strategy aggregates. Replies must be well-formed (put
UpdateValidator outside this wrapper).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from logging import INFO
from typing import cast

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.strategies.wrapper import ReplyCheckingWrapper
from aureon.tracking.round_log import RoundLog


def bound_update(
    weights: dict[str, np.ndarray], reference: dict[str, np.ndarray], *, max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """``weights`` with its update scaled to norm <= ``max_norm``, and the original norm."""
    deltas = {name: weights[name].astype(np.float64) - reference[name].astype(np.float64) for name in reference}
    norm = math.sqrt(sum(float(np.sum(np.square(d))) for d in deltas.values()))
    if norm <= max_norm:
        return weights, norm
    factor = max_norm / norm
    bounded = {
        name: (reference[name].astype(np.float64) + deltas[name] * factor).astype(reference[name].dtype)
        for name in reference
    }
    return bounded, norm


class NormBounding(ReplyCheckingWrapper):
    """Delegates to ``inner`` after scaling each update down to at most ``max_norm``."""

    def __init__(self, inner: Strategy, *, max_norm: float, round_log: RoundLog) -> None:
        if not (math.isfinite(max_norm) and max_norm > 0):
            raise ValueError(f"max_norm must be a finite number > 0, got {max_norm!r}")
        super().__init__(inner, round_log=round_log)
        self.max_norm = max_norm

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        reference = self.sent_weights(server_round)
        bounded = []
        for reply in replies:
            if reference is None or reply.has_error() or keys.ARRAYS not in reply.content.array_records:
                bounded.append(reply)
                continue
            weights = {name: a.numpy() for name, a in cast(ArrayRecord, reply.content[keys.ARRAYS]).items()}
            clipped, norm = bound_update(weights, reference, max_norm=self.max_norm)
            if clipped is weights:
                bounded.append(reply)
                continue
            log(
                INFO,
                "round %d: update of node %d scaled from norm %.4g to %.4g",
                server_round,
                reply.metadata.src_node_id,
                norm,
                self.max_norm,
            )
            content = RecordDict({k: v for k, v in reply.content.items() if k != keys.ARRAYS})
            content[keys.ARRAYS] = ArrayRecord({n: Array(np.ascontiguousarray(v)) for n, v in clipped.items()})
            bounded.append(Message(content=content, metadata=reply.metadata))  # type: ignore[call-overload]
        return self.inner.aggregate_train(server_round, bounded)
