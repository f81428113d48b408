"""A wrapper over any strategy that refuses malformed or out-of-bound client updates.

Flower's strategies trust their replies: a NaN poisons the average, a missing
tensor or an extra metric raises InconsistentMessageReplies and stops the run.
This wrapper checks each reply against the global model the server sent and
passes on only the ones that fit; each refusal is logged and recorded (with
its reason) in results.json, and the round goes on with the rest.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from logging import WARNING
from typing import cast

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.strategies.ledger import RoundLedger
from aureon.strategies.wrapper import ReferenceKeepingWrapper

STAGE = "update-validation"


class UpdateValidator(ReferenceKeepingWrapper):
    """Delegates to ``inner`` after dropping replies that fail ``check_reply``.

    A reply is refused when it has no ArrayRecord ``arrays`` or MetricRecord,
    lacks a positive finite ``num-examples``, misses or adds a tensor, has a
    tensor of another shape or dtype, holds NaN or Inf, or (with
    ``max_update_norm``) moves the model farther than that L2 distance.
    """

    def __init__(self, inner: Strategy, *, ledger: RoundLedger, max_update_norm: float | None = None) -> None:
        super().__init__(inner)
        self.ledger = ledger
        self.max_update_norm = max_update_norm

    def check_reply(self, reply: Message, reference: dict[str, np.ndarray]) -> str | None:
        """Why ``reply`` cannot be aggregated, or None if it can."""
        content = reply.content
        if list(content.array_records.keys()) != [keys.ARRAYS]:
            found = list(content.array_records.keys())
            return f"expected exactly one ArrayRecord {keys.ARRAYS!r}, got {found}"
        if len(content.metric_records) != 1:
            return f"expected exactly one MetricRecord, got {len(content.metric_records)}"
        metrics = next(iter(content.metric_records.values()))
        weight = metrics.get(keys.NUM_EXAMPLES)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not (math.isfinite(weight) and weight > 0)
        ):
            return f"metric {keys.NUM_EXAMPLES!r} must be a finite number > 0, got {weight!r}"
        received = cast(ArrayRecord, content[keys.ARRAYS])
        missing = sorted(set(reference) - set(received.keys()))
        extra = sorted(set(received.keys()) - set(reference))
        if missing or extra:
            return f"tensors differ from the global model: missing {missing}, unexpected {extra}"
        squared = 0.0
        for name, expected in reference.items():
            array = received[name]
            if array.dtype != str(expected.dtype) or tuple(array.shape) != expected.shape:
                return (
                    f"tensor {name!r} is {array.dtype}{list(array.shape)}, "
                    f"expected {expected.dtype}{list(expected.shape)}"
                )
            try:
                value = np.asarray(array.numpy())
            except (ValueError, TypeError) as error:
                return f"tensor {name!r} cannot be read: {error}"
            if value.shape != expected.shape:
                return f"tensor {name!r}'s bytes do not match its declared shape"
            if np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value)):
                return f"tensor {name!r} contains NaN or Inf"
            squared += float(np.sum(np.square(value.astype(np.float64) - expected.astype(np.float64))))
        norm = math.sqrt(squared)
        if self.max_update_norm is not None and norm > self.max_update_norm:
            return f"update norm {norm:.4g} exceeds validation.max_update_norm={self.max_update_norm}"
        return None

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        reference = self._reference.get(server_round, {})
        passed: list[Message] = []
        for reply in replies:
            if reply.has_error():
                passed.append(reply)  # the inner strategy logs it; RoundRecorder records it
                continue
            reason = "the reply has no content" if not reply.has_content() else None
            reason = reason or self.check_reply(reply, reference)
            if reason is None:
                passed.append(reply)
            else:
                self._refuse(server_round, reply, reason)
        return self.inner.aggregate_train(server_round, self._same_metric_keys(server_round, passed))

    def _same_metric_keys(self, server_round: int, replies: list[Message]) -> list[Message]:
        """Keep the replies whose metric names match the most common set (Flower requires one set)."""
        contents = [r for r in replies if not r.has_error()]
        if not contents:
            return replies
        names = {id(r): frozenset(next(iter(r.content.metric_records.values())).keys()) for r in contents}
        usual, _ = Counter(names.values()).most_common(1)[0]
        kept = []
        for reply in replies:
            if reply.has_error() or names[id(reply)] == usual:
                kept.append(reply)
            else:
                odd = sorted(names[id(reply)] ^ usual)
                self._refuse(server_round, reply, f"metric names differ from the other replies: {odd}")
        return kept

    def _refuse(self, server_round: int, reply: Message, reason: str) -> None:
        node_id = reply.metadata.src_node_id
        log(WARNING, "round %d: update of node %d rejected: %s", server_round, node_id, reason)
        self.ledger.reject(server_round, node_id=node_id, stage=STAGE, reason=reason)
