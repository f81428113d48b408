"""8-bit quantization with unbiased stochastic rounding and one scale per tensor.

Each tensor is scaled so that its largest magnitude maps to 127, then every
value is rounded up or down at random with probabilities that make the
expected decoded value equal the input (E[q] = x / scale). Averaging many
clients' updates therefore averages the rounding error away instead of
accumulating a bias, as nearest rounding would.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aureon.codecs.codec import Codec, payload_array
from aureon.codecs.layout import segment_bounds

LEVELS = 127  # symmetric: -127..127, so 0 is exact and the scale is max|x| / 127


def stochastic_round(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """floor(x + u) with u ~ U[0, 1): rounds up with probability frac(x), so E = x."""
    x = np.asarray(x, dtype=np.float64)
    return np.floor(x + rng.random(x.shape))


def int8_scales(flat: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Per-segment scale max|x| / 127 as float32 (0 for an all-zero segment)."""
    bounds = segment_bounds(sizes)
    magnitude = np.abs(np.asarray(flat, dtype=np.float32))
    peaks = np.array(
        [magnitude[a:b].max(initial=0.0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
        dtype=np.float64,
    )
    return (peaks / LEVELS).astype(np.float32)


def quantize_int8(flat: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, float32 scale per segment); decoded error < one scale step per value."""
    scales = int8_scales(flat, sizes)
    per_value = np.repeat(scales.astype(np.float64), np.asarray(sizes, dtype=np.int64))
    safe = np.where(per_value > 0, per_value, 1.0)
    codes = stochastic_round(np.asarray(flat, dtype=np.float64) / safe, rng)
    return np.clip(codes, -LEVELS, LEVELS).astype(np.int8), scales


def dequantize_int8(codes: np.ndarray, scales: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """codes * scale of their segment, as float32."""
    per_value = np.repeat(scales.astype(np.float32), np.asarray(sizes, dtype=np.int64))
    return codes.astype(np.float32) * per_value


class Int8Codec(Codec):
    """A quarter of float32's bytes; unbiased, error below max|x|/127 per value.

    Owns its random generator, seeded at construction, so a run is repeatable.
    """

    name = "int8"

    def __init__(self, *, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def encode_flat(self, flat: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
        codes, scales = quantize_int8(flat, sizes, self.rng)
        return {"codes": codes, "scales": scales}

    @classmethod
    def decode_flat(cls, arrays: Mapping[str, np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
        codes = payload_array(arrays, "codes", cls.name)
        scales = payload_array(arrays, "scales", cls.name)
        expected = int(segment_bounds(sizes)[-1])
        if codes.shape != (expected,) or codes.dtype != np.int8:
            raise ValueError(f"codec 'int8': {expected} int8 codes expected, got {codes.dtype} {codes.shape}")
        if scales.shape != (len(sizes),):
            raise ValueError(f"codec 'int8': one scale per tensor ({len(sizes)}) expected, got {scales.shape}")
        return dequantize_int8(codes, scales, sizes)
