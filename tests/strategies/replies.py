"""Build the reply messages a strategy receives, without running clients."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MessageType, MetricRecord, RecordDict

from aureon import keys

GLOBAL = {"w": np.zeros((3, 2), dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}


def reply(
    node_id: int,
    arrays: Mapping[str, np.ndarray] | None,
    metrics: Mapping[str, int | float] | None,
    *,
    extra: Mapping[str, object] | None = None,
) -> Message:
    """A reply from ``node_id`` carrying ``arrays`` and ``metrics`` (None leaves the record out)."""
    instruction = Message(RecordDict(), dst_node_id=node_id, message_type=MessageType.TRAIN)
    content = RecordDict()
    if arrays is not None:
        content[keys.ARRAYS] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    if metrics is not None:
        content[keys.METRICS] = MetricRecord(dict(metrics))
    for name, record in (extra or {}).items():
        content[name] = record
    return Message(content, reply_to=instruction)


def weights(value: float, **changes: np.ndarray) -> dict[str, np.ndarray]:
    """The global model's tensors shifted by ``value``, with some replaced."""
    out = {k: (v + value).astype(v.dtype) for k, v in GLOBAL.items()}
    out.update(changes)
    return out


def as_numpy(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: a.numpy() for k, a in record.items()}
