"""Fixed-point quantization of clipped real values into [0, 2**bits - 1].

A value x is clipped to [-c, c] and mapped to q = round((x + c) / step) with
step = 2c / (2**bits - 1). Rounding to the nearest level makes the error of one
value at most step / 2, so a sum of ``count`` quantized values differs from
the sum of the clipped values by at most ``count * step / 2`` per coordinate
(``sum_error_bound``). Clipping itself is not an error of the protocol: values
outside [-c, c] are the caller's to avoid by choosing c.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from aureon.secagg.ring import RingVector

MAX_QUANTIZATION_BITS: Final = 52  # float64 holds every level exactly up to 2**53


def step_size(*, clipping_range: float, bits: int) -> float:
    """Distance between two adjacent quantization levels."""
    if not (math.isfinite(clipping_range) and clipping_range > 0):
        raise ValueError(f"clipping_range must be a finite number > 0, got {clipping_range!r}")
    if not 1 <= bits <= MAX_QUANTIZATION_BITS:
        raise ValueError(f"quantization bits must be in [1, {MAX_QUANTIZATION_BITS}], got {bits!r}")
    return 2.0 * clipping_range / float((1 << bits) - 1)


def quantize(values: npt.NDArray[np.float64], *, clipping_range: float, bits: int) -> npt.NDArray[np.uint64]:
    """Clip to [-c, c] and round to the nearest of 2**bits levels; returns uint64."""
    step = step_size(clipping_range=clipping_range, bits=bits)
    clipped = np.clip(np.asarray(values, dtype=np.float64), -clipping_range, clipping_range)
    levels = np.rint((clipped + clipping_range) / step)
    return np.clip(levels, 0, (1 << bits) - 1).astype(np.uint64)


def dequantize_sum(total: RingVector, *, count: int, clipping_range: float, bits: int) -> npt.NDArray[np.float64]:
    """The real-valued sum of ``count`` values whose quantized levels sum to ``total``."""
    step = step_size(clipping_range=clipping_range, bits=bits)
    return np.asarray(total, dtype=np.float64) * step - count * clipping_range


def sum_error_bound(*, count: int, clipping_range: float, bits: int) -> float:
    """Largest per-coordinate gap between a dequantized sum and the sum of clipped values."""
    return count * step_size(clipping_range=clipping_range, bits=bits) / 2.0
