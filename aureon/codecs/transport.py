"""Weights in and out of messages, compressed or not: the code both ends share.

The server sends the global weights (``payload=weights``); a client sends its
update as a delta against the weights it received (``payload=delta``), which
the server adds to its own exact copy of the global model. A message without a
``compression`` record carries plain float32 weights, as Flower's strategies
send them, so an uncompressed run stays byte-for-byte what it was.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from aureon import keys
from aureon.codecs.codec import Codec
from aureon.codecs.layout import layout_of
from aureon.codecs.payload import from_records, is_compressed, to_records
from aureon.codecs.registry import decode


def encode_weights(codec: Codec, weights: Mapping[str, np.ndarray]) -> dict[str, ArrayRecord | ConfigRecord]:
    """RecordDict entries carrying the global ``weights`` encoded by ``codec``."""
    return to_records(codec.encode(weights), "weights")


def delta_of(local: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """local - reference for floating tensors; other tensors (counters) keep their local value."""
    out: dict[str, np.ndarray] = {}
    for name, value in local.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating):
            out[name] = value.astype(np.float32) - np.asarray(reference[name], dtype=np.float32)
        else:
            out[name] = value
    return out


def weights_from_content(content: RecordDict, reference: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weights a message carries, decoded; a delta is added to ``reference``.

    ``reference`` is the receiver's model (or global weights): it gives the
    layout for decoding and, for a delta, the base it applies to.
    """
    if not is_compressed(content):
        record = content.array_records.get(keys.ARRAYS)
        if record is None:
            raise ValueError(f"message carries no {keys.ARRAYS!r} ArrayRecord; got {sorted(content.keys())}")
        return {name: array.numpy() for name, array in record.items()}
    encoded, kind = from_records(content)
    values = decode(encoded, layout_of(reference))
    if kind == "weights":
        return values
    out: dict[str, np.ndarray] = {}
    for name, value in values.items():
        base = np.asarray(reference[name])
        if np.issubdtype(base.dtype, np.floating):
            out[name] = (base.astype(np.float32) + value).astype(base.dtype)
        else:
            out[name] = value
    return out


def plain_arrays(weights: Mapping[str, np.ndarray]) -> ArrayRecord:
    """An uncompressed ArrayRecord of ``weights``, as a strategy expects to aggregate."""
    return ArrayRecord({name: Array(np.ascontiguousarray(value)) for name, value in weights.items()})
