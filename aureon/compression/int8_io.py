"""One compact file for an int8-quantized model: a JSON index and raw arrays, deflated.

``torch.save`` writes each tensor as its own zip entry with pickled metadata;
for the small models trained here that overhead is a quarter of an int8
file. This format keeps quantized tensors as their int8 values plus their
scales and zero points, groups arrays by dtype into one blob each, needs no
pickle, and rebuilds exactly the tensors it was given.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "aureon-int8-v1"
MAGIC = b"AUREONQ1"


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


def _decode(entry: dict[str, Any], blobs: Mapping[str, bytes]) -> Any:
    kind = entry["kind"]
    if kind == "none":
        return None
    if kind == "dtype":
        return getattr(torch, entry["value"])
    if kind == "tuple":
        return tuple(_decode(item, blobs) for item in entry["items"])

    def array(ref: dict[str, Any]) -> torch.Tensor:
        dtype = np.dtype(ref["dtype"])
        count = int(np.prod(ref["shape"], dtype=np.int64))
        flat = np.frombuffer(blobs[ref["dtype"]], dtype=dtype, count=count, offset=ref["offset"])
        return torch.from_numpy(flat.reshape(ref["shape"]).copy())

    if kind == "tensor":
        return array(entry["array"])
    if kind == "per_channel":
        return torch._make_per_channel_quantized_tensor(
            array(entry["values"]), array(entry["scales"]), array(entry["zero_points"]),
            entry["axis"],
        )
    if kind == "per_tensor":
        return torch._make_per_tensor_quantized_tensor(
            array(entry["values"]), entry["scale"], entry["zero_point"]
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
        {"format": FORMAT, "entries": entries, "metadata": metadata,
         "blobs": [{"dtype": d, "bytes": len(blobs.data[d])} for d in order]},
        separators=(",", ":"),
    ).encode()
    payload = struct.pack("<I", len(header)) + header + b"".join(blobs.data[d] for d in order)
    Path(path).write_bytes(MAGIC + zlib.compress(payload, 9))
    return Path(path).stat().st_size


def load_int8_state(path: Path) -> OrderedDict[str, Any]:
    """The state dict ``save_int8_state`` wrote, quantized tensors included."""
    raw = Path(path).read_bytes()
    if not raw.startswith(MAGIC):
        raise ValueError(f"{path} is not an {FORMAT} file")
    payload = zlib.decompress(raw[len(MAGIC):])
    (length,) = struct.unpack("<I", payload[:4])
    header = json.loads(payload[4 : 4 + length])
    blobs, start = {}, 4 + length
    for blob in header["blobs"]:
        blobs[blob["dtype"]] = payload[start : start + blob["bytes"]]
        start += blob["bytes"]
    state = OrderedDict((name, _decode(entry, blobs)) for name, entry in header["entries"].items())
    state._metadata = OrderedDict(header.get("metadata", {}))  # type: ignore[attr-defined]
    return state
