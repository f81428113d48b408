"""One compact file for an int8-quantized model: a JSON index and raw arrays, deflated.

``torch.save`` writes each tensor as its own zip entry with pickled metadata;
for the small models trained here that overhead is a quarter of an int8
file. This format keeps quantized tensors as their int8 values plus their
scales and zero points, groups arrays by dtype into one blob each, needs no
pickle, and rebuilds exactly the tensors it was given.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import torch

from aureon.exceptions import ModelFileError, describe

FORMAT = "aureon-int8-v1"
MAGIC = b"AUREONQ1"
MAX_PAYLOAD_BYTES = 1 << 32  # far above any model here; bounds what a crafted file can inflate to
_ARRAY_KINDS = "biuf"  # bool, integers, floats: what quantized state dicts hold
# What decoding a malformed entry raises (torch's constructors reject bad scales, axes and dtypes).
_DECODE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError, OverflowError)


class _Blobs:
    """Arrays appended per dtype; an entry records where each array lives."""

    def __init__(self) -> None:
        self.data: dict[str, bytearray] = {}

    def add(self, tensor: torch.Tensor) -> dict[str, Any]:
        array = np.ascontiguousarray(tensor.detach().cpu().numpy())
        blob = self.data.setdefault(array.dtype.str, bytearray())
        entry = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": len(blob)}
        blob += array.tobytes()
        return entry


def _qtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _encode(value: Any, blobs: _Blobs) -> dict[str, Any]:
    if value is None:
        return {"kind": "none"}
    if isinstance(value, torch.dtype):
        return {"kind": "dtype", "value": _qtype(value)}
    if isinstance(value, tuple):
        return {"kind": "tuple", "items": [_encode(item, blobs) for item in value]}
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"cannot store a {type(value).__name__} in an {FORMAT} file")
    if not value.is_quantized:
        return {"kind": "tensor", "array": blobs.add(value)}
    if value.qscheme() == torch.per_channel_affine:
        return {
            "kind": "per_channel",
            "values": blobs.add(value.int_repr()),
            "scales": blobs.add(value.q_per_channel_scales()),
            "zero_points": blobs.add(value.q_per_channel_zero_points()),
            "axis": value.q_per_channel_axis(),
        }
    if value.qscheme() == torch.per_tensor_affine:
        return {
            "kind": "per_tensor",
            "values": blobs.add(value.int_repr()),
            "scale": value.q_scale(),
            "zero_point": value.q_zero_point(),
        }
    raise TypeError(f"unsupported quantization scheme {value.qscheme()}")


def _is_size(value: Any) -> TypeGuard[int]:
    """A non-negative int (JSON has no unsigned type; bool is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _array(ref: Any, blobs: Mapping[str, bytes]) -> torch.Tensor:
    """One stored array, its dtype, shape and byte range checked against its blob."""
    if not isinstance(ref, dict) or ref.get("dtype") not in blobs:
        raise ValueError(f"array reference {ref!r} names no stored blob")
    dtype = np.dtype(ref["dtype"])
    shape, offset = ref.get("shape"), ref.get("offset")
    if dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"array dtype {dtype} is not numeric")
    if not isinstance(shape, list) or not all(_is_size(d) for d in shape) or not _is_size(offset):
        raise ValueError(f"array shape {shape!r} / offset {offset!r} are not sizes")
    count = math.prod(shape)
    blob = blobs[ref["dtype"]]
    if offset + count * dtype.itemsize > len(blob):
        raise ValueError(f"array of shape {shape} at offset {offset} runs past its {len(blob)}-byte blob")
    flat = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
    return torch.from_numpy(flat.reshape(shape).copy())


def _decode(entry: Any, blobs: Mapping[str, bytes]) -> Any:
    """The inverse of ``_encode``; a malformed entry raises one of ``_DECODE_ERRORS``."""
    kind = entry["kind"]
    if kind == "none":
        return None
    if kind == "dtype":
        value = getattr(torch, entry["value"], None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"{entry['value']!r} is not a torch dtype")
        return value
    if kind == "tuple":
        return tuple(_decode(item, blobs) for item in entry["items"])
    if kind == "tensor":
        return _array(entry["array"], blobs)
    if kind == "per_channel":
        return torch._make_per_channel_quantized_tensor(
            _array(entry["values"], blobs),
            _array(entry["scales"], blobs),
            _array(entry["zero_points"], blobs),
            entry["axis"],
        )
    if kind == "per_tensor":
        return torch._make_per_tensor_quantized_tensor(
            _array(entry["values"], blobs), entry["scale"], entry["zero_point"]
        )
    raise ValueError(f"unknown entry kind {kind!r} in an {FORMAT} file")


def save_int8_state(state: Mapping[str, Any], path: Path) -> int:
    """Write a quantized model's state dict to ``path``; return the file's size in bytes."""
    blobs = _Blobs()
    entries = {name: _encode(value, blobs) for name, value in state.items()}
    # Module versions: quantized modules read theirs to parse their own entries.
    metadata = dict(getattr(state, "_metadata", {}) or {})
    order = sorted(blobs.data)
    header = json.dumps(
        {
            "format": FORMAT,
            "entries": entries,
            "metadata": metadata,
            "blobs": [{"dtype": d, "bytes": len(blobs.data[d])} for d in order],
        },
        separators=(",", ":"),
    ).encode()
    payload = struct.pack("<I", len(header)) + header + b"".join(blobs.data[d] for d in order)
    Path(path).write_bytes(MAGIC + zlib.compress(payload, 9))
    return Path(path).stat().st_size


def _inflate(path: Path, raw: bytes) -> bytes:
    """The payload after the magic, decompressed; a damaged or oversized stream is refused."""
    if not raw.startswith(MAGIC):
        raise ModelFileError(f"{path} is not an {FORMAT} file (it does not start with {MAGIC!r})")
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(raw[len(MAGIC) :], MAX_PAYLOAD_BYTES)
    except zlib.error as err:
        raise ModelFileError(f"{path}: corrupted compressed data ({describe(err)})") from err
    if inflater.unconsumed_tail:
        raise ModelFileError(f"{path}: decompresses to more than {MAX_PAYLOAD_BYTES} bytes")
    if not inflater.eof:
        raise ModelFileError(f"{path}: truncated (the compressed data ends early)")
    if inflater.unused_data:
        raise ModelFileError(f"{path}: {len(inflater.unused_data)} stray bytes after the compressed data")
    return payload


def _split(path: Path, payload: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(JSON header, blob per dtype), with the blob sizes adding up to the payload."""
    if len(payload) < 4:
        raise ModelFileError(f"{path}: payload too short for its header length")
    (length,) = struct.unpack("<I", payload[:4])
    if 4 + length > len(payload):
        raise ModelFileError(f"{path}: header of {length} bytes runs past the {len(payload)}-byte payload")
    try:
        header = json.loads(payload[4 : 4 + length])
    except (ValueError, RecursionError) as err:
        raise ModelFileError(f"{path}: header is not JSON ({describe(err)})") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an {FORMAT} file (its header names another format)")
    specs, entries = header.get("blobs"), header.get("entries")
    if (
        not isinstance(entries, dict)
        or not isinstance(specs, list)
        or not all(isinstance(b, dict) and isinstance(b.get("dtype"), str) and _is_size(b.get("bytes")) for b in specs)
    ):
        raise ModelFileError(f"{path}: header lacks its entries or a valid blob table")
    start = 4 + length
    if start + sum(b["bytes"] for b in specs) != len(payload):
        raise ModelFileError(f"{path}: blob sizes in the header do not add up to the payload")
    blobs = {}
    for blob in specs:
        blobs[blob["dtype"]] = payload[start : start + blob["bytes"]]
        start += blob["bytes"]
    return header, blobs


def load_int8_state(path: Path) -> OrderedDict[str, Any]:
    """The state dict ``save_int8_state`` wrote, quantized tensors included.

    Every size in the file is checked before it is used; a damaged file is a
    ModelFileError naming it and the entry at fault.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ModelFileError(f"{path}: cannot be read ({describe(err)})") from err
    header, blobs = _split(path, _inflate(path, raw))
    state: OrderedDict[str, Any] = OrderedDict()
    for name, entry in header["entries"].items():
        try:
            state[name] = _decode(entry, blobs)
        except _DECODE_ERRORS as err:
            raise ModelFileError(f"{path}: entry {name!r} is malformed ({describe(err)})") from err
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: metadata is not a JSON object")
    state._metadata = OrderedDict(metadata)  # type: ignore[attr-defined]
    return state
