"""The protocol's wire schema: field names and strict readers for its ConfigRecords.

Every stage exchanges one ConfigRecord (stored under ``keys.SECAGG`` in the
message) plus, in stage 3, the masked vector as an ArrayRecord. The readers
here raise MalformedMessage naming the field and what was wrong, so neither
side ever acts on a value of the wrong kind or size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from flwr.app import ConfigRecord, RecordDict

from aureon import keys
from aureon.secagg.errors import MalformedMessage

# stage 0: setup (server -> client)
ROUND: Final = "round"
INDEX: Final = "index"
NUM_CLIENTS: Final = "num-clients"
NEIGHBOURS: Final = "neighbours"
NEIGHBOURHOOD_SIZE: Final = "neighbourhood-size"
THRESHOLD: Final = "threshold"
MODULUS_BITS: Final = "modulus-bits"
QUANTIZATION_BITS: Final = "quantization-bits"
CLIPPING_RANGE: Final = "clipping-range"
MAX_WEIGHT: Final = "max-weight"
VECTOR_LENGTH: Final = "vector-length"
GRAPH_SEED: Final = "graph-seed"  # fresh per run: every client rebuilds the neighbour graph from it
# stage 1: advertise keys (client -> server)
ENCRYPTION_KEY: Final = "encryption-public-key"
MASK_KEY: Final = "mask-public-key"
SEED_COMMITMENT: Final = "seed-commitment"
# stage 2: share keys (server -> client, then client -> server)
PEERS: Final = "peers"
PEER_ENCRYPTION_KEYS: Final = "peer-encryption-keys"
PEER_MASK_KEYS: Final = "peer-mask-keys"
DESTINATIONS: Final = "destinations"
CIPHERTEXTS: Final = "ciphertexts"
# stage 3: masked input (server -> client carries routed shares)
SOURCES: Final = "sources"
MASKED: Final = "masked"  # the array's name inside the ArrayRecord keys.SECAGG_MASKED
# stage 4: unmasking
SURVIVORS: Final = "survivors"
DROPPED: Final = "dropped"
SEED_SHARE_OWNERS: Final = "seed-share-owners"
SEED_SHARES: Final = "seed-shares"
KEY_SHARE_OWNERS: Final = "key-share-owners"
KEY_SHARES: Final = "key-shares"
NEXT_ROUND: Final = "next-round"  # in a masked-input request: advertise keys for this round now
REFUSED: Final = "refused"  # why a client declined a stage that rode on another message


def protocol_record(content: RecordDict) -> ConfigRecord:
    """The message's secure-aggregation ConfigRecord."""
    record = content.config_records.get(keys.SECAGG)
    if record is None:
        raise MalformedMessage(f"no ConfigRecord {keys.SECAGG!r} in the message")
    return record


def _field(record: ConfigRecord, name: str) -> object:
    if name not in record:
        raise MalformedMessage(f"field {name!r} is missing")
    return record[name]


def read_int(record: ConfigRecord, name: str, *, low: int, high: int) -> int:
    """An integer field in [low, high]."""
    value = _field(record, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MalformedMessage(f"field {name!r} must be an integer in [{low}, {high}], got {value!r}")
    return value


def read_float(record: ConfigRecord, name: str) -> float:
    """A finite, positive float field."""
    value = _field(record, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise MalformedMessage(f"field {name!r} must be a finite number > 0, got {value!r}")
    return float(value)


def read_bytes(record: ConfigRecord, name: str, *, size: int) -> bytes:
    """A bytes field of exactly ``size`` bytes."""
    value = _field(record, name)
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedMessage(f"field {name!r} must be {size} bytes")
    return value


def read_indices(record: ConfigRecord, name: str, *, high: int) -> list[int]:
    """A list of distinct protocol indices in [1, high] (possibly empty)."""
    value = _field(record, name)
    if not isinstance(value, list) or any(
        isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= high for v in value
    ):
        raise MalformedMessage(f"field {name!r} must be a list of indices in [1, {high}]")
    if len(set(value)) != len(value):
        raise MalformedMessage(f"field {name!r} lists an index twice")
    return list(value)


def read_bytes_list(record: ConfigRecord, name: str, *, count: int, size: int) -> list[bytes]:
    """A list of ``count`` bytes values of ``size`` bytes each."""
    value = _field(record, name)
    if not isinstance(value, list) or len(value) != count:
        raise MalformedMessage(f"field {name!r} must be a list of {count} bytes values")
    if any(not isinstance(v, bytes) or len(v) != size for v in value):
        raise MalformedMessage(f"every entry of field {name!r} must be {size} bytes")
    return list(value)


def bytes_list(values: Sequence[bytes]) -> list[bytes]:
    """A list ready for a ConfigRecord (which refuses tuples)."""
    return [bytes(v) for v in values]
