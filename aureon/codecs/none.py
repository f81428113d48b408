"""The identity codec: float32 values as they are (the baseline every codec is compared to)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aureon.codecs.codec import Codec, payload_array
from aureon.codecs.layout import segment_bounds


class NoneCodec(Codec):
    """No compression: 4 bytes per float32 parameter; exact for float32 models."""

    name = "none"
    lossless = True

    def encode_flat(self, flat: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {"values": np.asarray(flat, dtype=np.float32).copy()}

    @classmethod
    def decode_flat(cls, arrays: Mapping[str, np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
        values = payload_array(arrays, "values", cls.name).astype(np.float32)
        expected = int(segment_bounds(sizes)[-1])
        if values.shape != (expected,):
            raise ValueError(f"codec 'none': {expected} values expected, got {values.shape}")
        return values
