"""Mask expansion: a 32-byte seed stretched into a vector uniform over Z_{2^bits}.

The generator is AES-256 in counter mode (its keystream is a standard
cryptographic PRG; AES-NI makes it cheap). Each word of keystream (32 bits when
bits <= 32, else 64) is reduced modulo 2**bits, which divides 2**32 or 2**64:
the result is exactly uniform.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from aureon.secagg import ring

SEED_BYTES: Final = 32
_ZERO_BLOCK: Final = bytes(16)


def expand(seed: bytes, *, length: int, bits: int) -> ring.RingVector:
    """``length`` values uniform in [0, 2**bits), in the ring's dtype, determined by ``seed``."""
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ValueError(f"a mask seed must be {SEED_BYTES} bytes")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    word = ring.wire_dtype(bits).newbyteorder("<")
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_BLOCK)).encryptor()
    stream = encryptor.update(bytes(word.itemsize * length)) + encryptor.finalize()
    return ring.reduce(np.frombuffer(stream, dtype=word), bits)
