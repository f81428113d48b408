"""Derived seeds: one run seed fans out into independent per-client, per-round seeds."""

from __future__ import annotations

import numpy as np


def derive_seed(run_seed: int, *path: int) -> int:
    """A 31-bit seed determined by the run seed and a path such as (partition, round)."""
    state = np.random.SeedSequence([run_seed, *path]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)
