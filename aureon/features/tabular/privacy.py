"""Gaussian noise on a client's released statistics, and its zero-concentrated DP accounting.

Each released vector (counts with missing counts, sums, sums of squares,
histograms, category counts) gets Gaussian noise of standard deviation
``multiplier * sensitivity``, where the sensitivity is its L2 change when one
row is added or removed: sqrt(columns) for counts and histograms, and from the
declared value bounds (``features.bounds``: every value is clipped into
[low, high] before it is summed) for sums and sums of squares. Each vector is
a Gaussian mechanism with rho = 1 / (2 multiplier^2) (Bun & Steinke 2016);
rhos add up over every vector a client releases in a run, and rho converts
to (epsilon, delta)-DP as epsilon = rho + 2 sqrt(rho ln(1/delta)).
The noise comes from local entropy (``secrets``), never from a seed.
"""

from __future__ import annotations

import math
import secrets

import numpy as np


def epsilon_from_rho(rho: float, delta: float) -> float:
    """(epsilon, delta)-DP implied by rho-zCDP."""
    if rho < 0 or not 0 < delta < 1:
        raise ValueError(f"rho must be >= 0 and delta in (0, 1), got rho={rho}, delta={delta}")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def rho_from_epsilon(epsilon: float, delta: float) -> float:
    """The largest rho whose (epsilon, delta) conversion is at most ``epsilon`` (the inverse of the above)."""
    if epsilon <= 0 or not 0 < delta < 1:
        raise ValueError(f"epsilon must be > 0 and delta in (0, 1), got epsilon={epsilon}, delta={delta}")
    log_term = math.log(1.0 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def noise_multiplier(*, epsilon: float, delta: float, releases: int) -> float:
    """The multiplier that spends exactly (epsilon, delta) over ``releases`` Gaussian vectors."""
    if releases < 1:
        raise ValueError(f"releases must be >= 1, got {releases}")
    return math.sqrt(releases / (2.0 * rho_from_epsilon(epsilon, delta)))


def spent_epsilon(*, multiplier: float, releases: int, delta: float) -> float:
    """The (epsilon, delta) of ``releases`` vectors noised at ``multiplier``."""
    return epsilon_from_rho(releases / (2.0 * multiplier * multiplier), delta)


def local_generator() -> np.random.Generator:
    """A generator seeded from this process's entropy: nobody else can know the noise."""
    return np.random.default_rng(secrets.randbits(128))


def add_noise(values: np.ndarray, *, sensitivity: float, multiplier: float, rng: np.random.Generator) -> np.ndarray:
    """``values`` plus Gaussian noise of std ``multiplier * sensitivity``."""
    return np.asarray(values, dtype=np.float64) + rng.normal(0.0, multiplier * sensitivity, size=np.shape(values))


def sum_sensitivity(low: np.ndarray, high: np.ndarray) -> float:
    """L2 change of per-column sums when one row (clipped into [low, high]) comes or goes."""
    return float(np.sqrt(np.sum(np.maximum(np.abs(low), np.abs(high)) ** 2)))


def square_sensitivity(low: np.ndarray, high: np.ndarray) -> float:
    """L2 change of per-column sums of squares for one row clipped into [low, high]."""
    return float(np.sqrt(np.sum(np.maximum(low * low, high * high) ** 2)))
