"""Top-k sparsification: send only the largest-magnitude fraction of each tensor.

Each tensor keeps ceil(ratio * size) entries (at least one), so a small
tensor such as a bias is never starved by a large one. The kept entries
travel as int32 positions in the flat vector plus their values (float16 by
default: 6 bytes per kept entry against 4 per entry dense, i.e. about
0.67 / ratio times fewer bytes). What is dropped is not lost when the client
keeps it as error feedback (aureon.codecs.error_feedback).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from aureon.codecs.codec import Codec, payload_array
from aureon.codecs.fp16 import to_fp16
from aureon.codecs.layout import segment_bounds

VALUE_DTYPES = ("float16", "float32")


def keep_count(size: int, ratio: float) -> int:
    """Entries kept from a tensor of ``size`` entries: ceil(ratio * size), at least 1."""
    if size == 0:
        return 0
    return min(size, max(1, math.ceil(ratio * size)))


def topk_select(flat: np.ndarray, sizes: tuple[int, ...], ratio: float) -> np.ndarray:
    """Sorted int64 positions of the largest-magnitude entries of each segment."""
    bounds = segment_bounds(sizes)
    magnitude = np.abs(np.asarray(flat))
    chosen = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        k = keep_count(int(stop - start), ratio)
        if k == 0:
            continue
        segment = magnitude[start:stop]
        local = np.argpartition(segment, len(segment) - k)[len(segment) - k :]
        chosen.append(np.sort(local) + start)
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(chosen)


def scatter(indices: np.ndarray, values: np.ndarray, total: int) -> np.ndarray:
    """A dense float32 vector of ``total`` zeros with ``values`` at ``indices``."""
    dense = np.zeros(total, dtype=np.float32)
    dense[indices] = values.astype(np.float32)
    return dense


class TopKCodec(Codec):
    """Keeps ``ratio`` of each tensor's entries: int32 indices plus float16/32 values."""

    name = "topk"

    def __init__(self, *, ratio: float, value_dtype: str = "float16") -> None:
        if not (math.isfinite(ratio) and 0.0 < ratio <= 1.0):
            raise ValueError(f"TopKCodec: ratio must be in (0, 1], got {ratio!r}")
        if value_dtype not in VALUE_DTYPES:
            raise ValueError(f"TopKCodec: value_dtype must be one of {VALUE_DTYPES}, got {value_dtype!r}")
        self.ratio = ratio
        self.value_dtype = value_dtype

    def encode_flat(self, flat: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
        total = int(segment_bounds(sizes)[-1])
        if total > np.iinfo(np.int32).max:
            raise ValueError(f"codec 'topk': {total} parameters exceed int32 indices")
        indices = topk_select(flat, sizes, self.ratio)
        picked = np.asarray(flat, dtype=np.float32)[indices]
        values = to_fp16(picked) if self.value_dtype == "float16" else picked
        return {"indices": indices.astype(np.int32), "values": values}

    @classmethod
    def decode_flat(cls, arrays: Mapping[str, np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
        indices = payload_array(arrays, "indices", cls.name)
        values = payload_array(arrays, "values", cls.name)
        total = int(segment_bounds(sizes)[-1])
        if indices.shape != values.shape or indices.ndim != 1:
            raise ValueError(
                f"codec 'topk': indices {indices.shape} and values {values.shape} must be 1-D and of equal length"
            )
        if indices.size and (indices.min() < 0 or indices.max() >= total):
            raise ValueError(f"codec 'topk': indices must lie in [0, {total}), got [{indices.min()}, {indices.max()}]")
        return scatter(indices.astype(np.int64), values, total)
