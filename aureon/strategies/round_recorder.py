"""A wrapper over any strategy that reports what each client sent and received to the round log."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.strategies.reply_records import config_record, first_metrics
from aureon.strategies.wrapper import StrategyWrapper
from aureon.tracking.round_log import RoundLog

# Flower's own strategies (QFedAvg's train_loss_key) and quickstarts name the loss train_loss
TRAIN_LOSS_KEYS = (keys.TRAIN_LOSS, "train_loss")


def _number(metrics: MetricRecord, key: str) -> float | None:
    """A finite scalar metric, or None (a malformed reply must not crash the recorder)."""
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def client_label(content: RecordDict) -> int | None:
    """The partition a reply's optional ``aureon-client`` ConfigRecord names, or None.

    A label for people reading results.json; the reply's identity is its source node.
    """
    record = config_record(content, keys.CLIENT_LABEL)
    value = None if record is None else record.get(keys.LABEL_PARTITION_ID)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def content_digest(content: RecordDict, *, arrays_only: bool = False) -> bytes:
    """SHA-256 of what a reply carries: its arrays' names, dtypes, shapes and bytes (and, unless
    ``arrays_only``, its other records).

    Replies sorted by it sum in the same order whatever order they arrived in
    and whatever node ids the SuperLink handed out; two replies with one digest
    carry the same content, so their order changes nothing.
    """
    digest = hashlib.sha256()
    for name in sorted(content.keys()):
        record = content[name]
        if isinstance(record, ArrayRecord):
            digest.update(f"record {name!r}\n".encode())
            for key, array in record.items():
                digest.update(f"{key!r} {array.dtype} {list(array.shape)} {len(array.data)}\n".encode())
                digest.update(array.data)
        elif not arrays_only:
            digest.update(f"record {name!r}\n".encode())
            digest.update(repr(sorted(record.items(), key=lambda item: item[0])).encode())
    return digest.digest()


def reply_order(message: Message) -> tuple[int, bytes, bytes, int]:
    """Replies with content first, by the digest of their arrays, then of all they carry; error
    replies after, by node (they are not summed).

    The arrays come first so that a reply's metrics (a declared example count, say) do not
    move it in the sum: the same updates are summed in the same order, whatever weights they declare.
    """
    if message.has_error() or not message.has_content():
        return (1, b"", b"", message.metadata.src_node_id)
    content = message.content
    return (0, content_digest(content, arrays_only=True), content_digest(content), message.metadata.src_node_id)


def in_reply_order(replies: list[Message]) -> list[Message]:
    """``sorted(replies, key=reply_order)``, each reply's arrays hashed once.

    The digest of everything a reply carries only orders replies whose arrays
    are identical, so it is computed for those alone.
    """
    keyed: list[tuple[tuple[int, bytes], Message]] = [
        ((1, b""), m) if m.has_error() or not m.has_content() else ((0, content_digest(m.content, arrays_only=True)), m)
        for m in replies
    ]
    tied = Counter(primary for primary, _ in keyed)

    def key(item: tuple[tuple[int, bytes], Message]) -> tuple[int, bytes, bytes, int]:
        (flag, arrays), message = item
        full = content_digest(message.content) if flag == 0 and tied[(flag, arrays)] > 1 else b""
        return (flag, arrays, full, message.metadata.src_node_id)

    return [message for _, message in sorted(keyed, key=key)]


def _record_order(message: Message) -> tuple[int, int, int]:
    """The order clients are listed in results.json: by label (unlabelled last), then node."""
    label = None if message.has_error() or not message.has_content() else client_label(message.content)
    return (1, 0, message.metadata.src_node_id) if label is None else (0, label, message.metadata.src_node_id)


class RoundRecorder(StrategyWrapper):
    """Delegates every hook to ``inner``; reports what each client sent and received to the round log.

    The outermost wrapper: it sees the messages as they cross the wire
    (encoded, if compressed) and every reply before any wrapper judged it,
    and it hands replies on in the order of their content's digest.
    """

    def __init__(self, inner: Strategy, *, round_log: RoundLog) -> None:
        super().__init__(inner)
        self.round_log = round_log

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        self.round_log.sent_train(server_round, messages)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        for reply in sorted(replies, key=_record_order):
            if reply.has_error():
                reason = reply.error.reason or "error"
                self.round_log.reply_failed(server_round, node_id=reply.metadata.src_node_id, reason=reason)
                continue
            metrics = first_metrics(reply.content) or MetricRecord()
            num_examples = _number(metrics, keys.NUM_EXAMPLES)
            losses = (_number(metrics, key) for key in TRAIN_LOSS_KEYS)
            self.round_log.replied(
                server_round,
                reply,
                partition_id=client_label(reply.content),
                num_examples=None if num_examples is None else int(num_examples),
                train_loss=next((loss for loss in losses if loss is not None), None),
                epsilon=_number(metrics, keys.EPSILON),
            )
        return self.inner.aggregate_train(server_round, in_reply_order(replies))
