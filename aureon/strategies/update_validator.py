"""A wrapper over any strategy that refuses malformed or out-of-bound client updates.

Flower's strategies trust their replies: a NaN poisons the average, a missing
tensor or an extra metric raises InconsistentMessageReplies and stops the run.
This wrapper checks each reply against the global model the server sent and
passes on only the ones that fit; each refusal is logged and recorded (with
its reason) in results.json, and the round goes on with the rest.

It requires what aggregation needs (arrays that match the global model, a
``num-examples`` weight), not that every client reports the same metrics: a
federation mixes AUREON's clients (``epsilon`` under DP, ``train-loss``
without) with plain Flower ones (``train_loss``, ``accuracy``, ...). The inner
strategy then averages the metrics every passed reply carries (``shared_metric_names``),
the same set whatever order the replies arrived in; the rest is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from logging import INFO, WARNING
from typing import cast

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.strategies.reply_records import array_record_names, first_metrics, metric_items
from aureon.strategies.wrapper import ReplyCheckingWrapper
from aureon.tracking.round_log import RoundLog

STAGE = "update-validation"
NO_EPSILON = (
    f"the reply reports no {keys.EPSILON!r}: privacy.require_client_dp=true aggregates only "
    "clients that report the DP-SGD epsilon they spent"
)


class UpdateValidator(ReplyCheckingWrapper):
    """Delegates to ``inner`` after dropping replies that fail ``check_reply``.

    A reply is refused when it has no ArrayRecord ``arrays`` or MetricRecord,
    lacks a positive finite ``num-examples``, misses or adds a tensor, has a
    tensor of another shape or dtype, holds NaN or Inf, or (with
    ``max_update_norm``) moves the model farther than that L2 distance. With
    ``require_epsilon`` (``privacy.require_client_dp``) a reply without a
    finite ``epsilon`` is refused too: one client without DP-SGD would void
    the guarantee the run states. Other metrics are never a reason: the
    passed replies reach ``inner`` with one MetricRecord ``metrics`` holding
    the metrics they all share.
    """

    def __init__(
        self,
        inner: Strategy,
        *,
        round_log: RoundLog,
        max_update_norm: float | None = None,
        require_epsilon: bool = False,
    ) -> None:
        super().__init__(inner, round_log=round_log)
        self.max_update_norm = max_update_norm
        self.require_epsilon = require_epsilon

    def check_reply(self, reply: Message, reference: dict[str, np.ndarray]) -> str | None:
        """Why ``reply`` cannot be aggregated, or None if it can."""
        content = reply.content
        found = array_record_names(content)
        if found != [keys.ARRAYS]:
            return f"expected exactly one ArrayRecord {keys.ARRAYS!r}, got {found}"
        weight_problem = _weight_problem(content)
        if weight_problem is not None:
            return weight_problem
        if self.require_epsilon and not _reports_epsilon(content):
            return NO_EPSILON
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
            if self.max_update_norm is not None:
                squared += float(np.sum(np.square(value.astype(np.float64) - expected.astype(np.float64))))
        norm = math.sqrt(squared)
        if self.max_update_norm is not None and norm > self.max_update_norm:
            return f"update norm {norm:.4g} exceeds validation.max_update_norm={self.max_update_norm}"
        return None

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        reference = self.sent_weights(server_round) or {}
        passed: list[Message] = []
        for reply in replies:
            if reply.has_error():
                passed.append(reply)  # the inner strategy logs it; RoundRecorder recorded it
                continue
            reason = "the reply has no content" if not reply.has_content() else None
            reason = reason or self.check_reply(reply, reference)
            if reason is None:
                passed.append(reply)
            else:
                self._refuse(server_round, reply, reason)
        return self.inner.aggregate_train(server_round, with_shared_metrics(server_round, passed))

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        passed: list[Message] = []
        for reply in replies:
            reason = None if reply.has_error() else _weight_problem(reply.content)
            if reason is None:
                passed.append(reply)
            else:
                node_id = reply.metadata.src_node_id
                log(WARNING, "round %d: evaluation of node %d left out: %s", server_round, node_id, reason)
        return self.inner.aggregate_evaluate(server_round, with_shared_metrics(server_round, passed))

    def _refuse(self, server_round: int, reply: Message, reason: str) -> None:
        node_id = reply.metadata.src_node_id
        log(WARNING, "round %d: update of node %d rejected: %s", server_round, node_id, reason)
        self.round_log.reject(server_round, node_id=node_id, stage=STAGE, reason=reason)


def _weight_problem(content: RecordDict) -> str | None:
    """Why ``content`` has no usable aggregation weight: one MetricRecord with ``num-examples`` > 0."""
    records = metric_items(content)
    if len(records) != 1:
        return f"expected exactly one MetricRecord, got {len(records)}"
    weight = records[0][1].get(keys.NUM_EXAMPLES)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight > 0):
        return f"metric {keys.NUM_EXAMPLES!r} must be a finite number > 0, got {weight!r}"
    return None


def _reports_epsilon(content: RecordDict) -> bool:
    """Whether ``content``'s one MetricRecord holds a finite ``epsilon`` >= 0."""
    metrics = first_metrics(content)
    epsilon = None if metrics is None else metrics.get(keys.EPSILON)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        return False
    return math.isfinite(epsilon) and epsilon >= 0


def _kind(value: object) -> tuple[str, int] | None:
    """How Flower averages ``value``: as a scalar or a list of that length; None if it cannot (NaN, ...)."""

    def finite(item: object) -> bool:
        return isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item)

    if finite(value):
        return ("scalar", 0)
    if isinstance(value, list) and all(finite(item) for item in value):
        return ("list", len(value))
    return None


def shared_metric_names(records: Iterable[MetricRecord]) -> set[str]:
    """The metrics every record carries with a finite value of one kind (scalar, or lists of one length).

    A set intersection: the answer does not depend on the records' order.
    """
    records = list(records)
    if not records:
        return set()
    common = set(records[0].keys()).intersection(*(record.keys() for record in records[1:]))
    return {name for name in common if len({_kind(r[name]) for r in records}) == 1 and _kind(records[0][name])}


def with_shared_metrics(server_round: int, replies: list[Message]) -> list[Message]:
    """``replies`` with each content's one MetricRecord cut down to the metrics they all share.

    Error replies pass as they are. Each reply keeps its metadata (its source
    node); a reply that already fits is passed on unchanged.
    """
    first = {id(r): metric_items(r.content)[0] for r in replies if not r.has_error()}
    records = [record for _, record in first.values()]
    shared = shared_metric_names(records)
    left_out = sorted(set().union(*(record.keys() for record in records)) - shared)
    if left_out:
        log(
            INFO,
            "round %d: metrics not carried alike by every reply, left out of the average: %s",
            server_round,
            left_out,
        )
    out = []
    for reply in replies:
        if reply.has_error():
            out.append(reply)
            continue
        name, record = first[id(reply)]
        if name == keys.METRICS and set(record.keys()) == shared:
            out.append(reply)
            continue
        content = RecordDict({k: v for k, v in reply.content.items() if not isinstance(v, MetricRecord)})
        content[keys.METRICS] = MetricRecord({k: v for k, v in record.items() if k in shared})
        out.append(Message(content=content, metadata=reply.metadata))  # type: ignore[call-overload]
    return out
