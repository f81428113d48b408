"""Half precision: 2 bytes per parameter, relative error at most 2**-11 per value."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aureon.codecs.codec import Codec, payload_array
from aureon.codecs.layout import segment_bounds

FP16_MAX = float(np.finfo(np.float16).max)


def to_fp16(flat: np.ndarray) -> np.ndarray:
    """Round to float16 (nearest even); refuse values float16 cannot hold instead of sending inf."""
    flat = np.asarray(flat, dtype=np.float32)
    if flat.size and float(np.max(np.abs(flat), initial=0.0)) > FP16_MAX:
        worst = float(np.max(np.abs(flat)))
        raise ValueError(
            f"codec 'fp16': values must be within +-{FP16_MAX:.0f} to fit float16, "
            f"got magnitude {worst:.4g}; use compression 'int8' or 'none' for this model"
        )
    return flat.astype(np.float16)


def fp16_error_bound(flat: np.ndarray) -> np.ndarray:
    """Largest error rounding to float16 can make per value: half a unit in the last place."""
    magnitude = np.abs(np.asarray(flat, dtype=np.float64))
    return magnitude * 2.0**-11 + 2.0**-25


class Fp16Codec(Codec):
    """Half the bytes of float32; error far below DP noise and SGD's own."""

    name = "fp16"

    def encode_flat(self, flat: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {"values": to_fp16(flat)}

    @classmethod
    def decode_flat(cls, arrays: Mapping[str, np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
        values = payload_array(arrays, "values", cls.name)
        expected = int(segment_bounds(sizes)[-1])
        if values.shape != (expected,) or values.dtype != np.float16:
            raise ValueError(f"codec 'fp16': {expected} float16 values expected, got {values.dtype} {values.shape}")
        return values.astype(np.float32)
