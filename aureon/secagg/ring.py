"""Vector arithmetic modulo 2**bits, the ring in which masked inputs are summed.

Masks are uniform in Z_{2^k}, so any sum that stays below 2**k is recovered
exactly; a power of two keeps the arithmetic to native unsigned wrap-around.
Vectors use the narrowest unsigned dtype that holds ``bits`` (uint32 up to
32 bits: as many bytes as float32 on the wire), in memory as on the wire;
its wrap-around modulus 2**32 or 2**64 is a multiple of 2**bits.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

MAX_MODULUS_BITS: Final = 62

# Unsigned integers of the width the modulus needs (uint32 or uint64): known only at run time.
RingVector: TypeAlias = npt.NDArray[np.unsignedinteger]
RingDtype: TypeAlias = np.dtype[np.unsignedinteger]


def check_bits(bits: int) -> None:
    """Refuse a modulus the uint64 arithmetic here cannot represent."""
    if not 2 <= bits <= MAX_MODULUS_BITS:
        raise ValueError(f"modulus bits must be in [2, {MAX_MODULUS_BITS}], got {bits!r}")


def wire_dtype(bits: int) -> RingDtype:
    """The unsigned dtype that carries values below 2**bits."""
    check_bits(bits)
    return np.dtype(np.uint32) if bits <= 32 else np.dtype(np.uint64)


def reduce(values: RingVector, bits: int) -> RingVector:
    """``values mod 2**bits`` in the ring's dtype (values must be unsigned integers)."""
    dtype = wire_dtype(bits)
    return values.astype(dtype, copy=False) & dtype.type((1 << bits) - 1)


def add(a: RingVector, b: RingVector, bits: int) -> RingVector:
    """``(a + b) mod 2**bits``."""
    dtype = wire_dtype(bits)
    return reduce(a.astype(dtype, copy=False) + b.astype(dtype, copy=False), bits)


def sub(a: RingVector, b: RingVector, bits: int) -> RingVector:
    """``(a - b) mod 2**bits``."""
    dtype = wire_dtype(bits)
    return reduce(a.astype(dtype, copy=False) - b.astype(dtype, copy=False), bits)


def in_range(values: RingVector, bits: int) -> bool:
    """True when every value is a valid residue, i.e. below 2**bits."""
    return values.size == 0 or int(values.max()) < (1 << bits)
