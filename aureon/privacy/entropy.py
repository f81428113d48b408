"""Randomness that protects privacy: DP noise and Poisson sampling.

It comes from entropy local to the party that trains (``secrets``), never
from a seed that anyone else knows: a coordinator that could regenerate a
client's noise could subtract it from the update, and the client's epsilon
would be infinite against it. Seeded noise exists only as an explicit opt-in
for benchmarks (``privacy.reproducible_noise``), and deployment refuses it.
"""

from __future__ import annotations

import secrets
from typing import Final

import torch

REPRODUCIBLE_NOISE_WARNING: Final = (
    "privacy.reproducible_noise=true: DP noise and Poisson sampling are derived from "
    "the run seed, so the privacy guarantee does NOT hold against anyone who knows "
    "the seed (the coordinator included). For benchmarks only."
)


def local_entropy_seed() -> int:
    """64 bits from the operating system's CSPRNG, drawn fresh for every use."""
    return secrets.randbits(64)


def privacy_generator(reproducible_seed: int | None = None) -> torch.Generator:
    """A dedicated generator for DP noise and Poisson sampling.

    ``reproducible_seed`` is the benchmark opt-in; ``None`` (the default and
    the only choice in deployment) seeds the generator from local entropy.
    """
    seed = local_entropy_seed() if reproducible_seed is None else reproducible_seed
    return torch.Generator().manual_seed(seed)
