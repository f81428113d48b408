"""Encoded payloads as Flower records, and back.

A compressed ArrayRecord sits under the usual ``arrays`` key, so strategies and
byte counters find it where they always do; a ConfigRecord under
``compression`` names the codec and says whether the payload is the global
weights (server to client) or a delta against them (client to server).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from aureon import keys
from aureon.codecs.codec import Encoded

PayloadKind = Literal["weights", "delta"]
PAYLOAD_KINDS: tuple[PayloadKind, ...] = ("weights", "delta")


def to_records(encoded: Encoded, kind: PayloadKind) -> dict[str, ArrayRecord | ConfigRecord]:
    """RecordDict entries carrying ``encoded``: its arrays and a ConfigRecord describing them."""
    arrays = ArrayRecord({name: Array(np.ascontiguousarray(value)) for name, value in encoded.arrays.items()})
    meta = ConfigRecord({keys.CODEC: encoded.codec, keys.PAYLOAD_KIND: kind, **encoded.meta})
    return {keys.ARRAYS: arrays, keys.COMPRESSION: meta}


def is_compressed(content: RecordDict) -> bool:
    """Whether ``content`` carries a compressed ArrayRecord (rather than plain weights)."""
    return keys.COMPRESSION in content.config_records


def from_records(content: RecordDict) -> tuple[Encoded, PayloadKind]:
    """The payload in ``content``, as ``to_records`` wrote it."""
    meta = content.config_records.get(keys.COMPRESSION)
    arrays = content.array_records.get(keys.ARRAYS)
    if meta is None or arrays is None:
        raise ValueError(
            f"a compressed message needs records {keys.ARRAYS!r} and {keys.COMPRESSION!r}, got {sorted(content.keys())}"
        )
    kind = str(meta.get(keys.PAYLOAD_KIND, ""))
    if kind not in PAYLOAD_KINDS:
        raise ValueError(f"compression record: {keys.PAYLOAD_KIND!r} must be one of {PAYLOAD_KINDS}, got {kind!r}")
    extra = {k: v for k, v in meta.items() if k not in (keys.CODEC, keys.PAYLOAD_KIND)}
    encoded = Encoded(
        codec=str(meta.get(keys.CODEC, "")),
        arrays={name: array.numpy() for name, array in arrays.items()},
        meta=extra,  # type: ignore[arg-type]
    )
    return encoded, kind  # type: ignore[return-value]
