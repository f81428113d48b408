"""Shamir secret sharing over the prime field GF(2**521 - 1).

The secrets shared here are 32-byte values (a self-mask seed and an X25519
private key), so the field must exceed 2**256; the Mersenne prime 2**521 - 1 is
the smallest well-known prime that does, and its shares encode in 66 bytes.
Coefficients come from the operating system's CSPRNG (``secrets``): seeding
them would let anyone who knows the seed recover every secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Final

PRIME: Final = (1 << 521) - 1
SHARE_BYTES: Final = (PRIME.bit_length() + 7) // 8


def split(secret: int, *, threshold: int, points: Sequence[int]) -> dict[int, int]:
    """Shares of ``secret`` at the x-coordinates ``points``; any ``threshold`` recover it."""
    if not 0 <= secret < PRIME:
        raise ValueError("the secret must be an integer in [0, 2**521 - 1)")
    if not 1 <= threshold <= len(points):
        raise ValueError(f"threshold must be in [1, {len(points)}] (number of points), got {threshold!r}")
    if len(set(points)) != len(points) or any(not 0 < x < PRIME for x in points):
        raise ValueError(f"points must be distinct, non-zero field elements, got {list(points)!r}")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = {}
    for x in points:
        value = 0
        for coefficient in reversed(coefficients):  # Horner's rule
            value = (value * x + coefficient) % PRIME
        shares[x] = value
    return shares


def interpolate_at(shares: Mapping[int, int], x: int) -> int:
    """Evaluate at ``x`` the polynomial of least degree through ``shares`` (Lagrange)."""
    if not shares:
        raise ValueError("at least one share is needed")
    points = list(shares.items())
    total = 0
    for i, (xi, yi) in enumerate(points):
        numerator, denominator = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                numerator = numerator * (x - xj) % PRIME
                denominator = denominator * (xi - xj) % PRIME
        if denominator == 0:
            raise ValueError(f"duplicate x-coordinate {xi} among the shares")
        total = (total + yi * numerator * pow(denominator, -1, PRIME)) % PRIME
    return total


def reconstruct(shares: Mapping[int, int], *, threshold: int) -> int:
    """The secret from exactly the first ``threshold`` shares (by x-coordinate)."""
    if len(shares) < threshold:
        raise ValueError(f"{threshold} shares are needed, got {len(shares)}")
    chosen = dict(sorted(shares.items())[:threshold])
    return interpolate_at(chosen, 0)


def to_bytes(value: int) -> bytes:
    """A share's value as fixed-width big-endian bytes."""
    return value.to_bytes(SHARE_BYTES, "big")


def from_bytes(data: bytes) -> int:
    """Inverse of ``to_bytes``; refuses values outside the field."""
    if len(data) != SHARE_BYTES:
        raise ValueError(f"a share must be {SHARE_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise ValueError("a share must be below 2**521 - 1")
    return value
