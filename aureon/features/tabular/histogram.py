"""Histograms on server-given bin edges, and quantiles read from a histogram.

Counts on shared edges add up exactly across clients; a quantile read from the
merged histogram is within one bin width of the pooled data's quantile.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def equal_width_edges(low: np.ndarray, high: np.ndarray, *, bins: int) -> np.ndarray:
    """(columns, bins + 1) edges spanning [low, high] per column (a constant column gets a unit span)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError("histogram edges need a finite low and high for every column")
    high = np.where(high > low, high, low + 1.0)
    steps = np.linspace(0.0, 1.0, bins + 1)
    return low[:, None] + (high - low)[:, None] * steps[None, :]


def histograms(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(columns, bins) counts of each column's non-missing values; values outside fall in the end bins."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2 or edges.ndim != 2 or matrix.shape[1] != edges.shape[0]:
        raise ValueError(f"values {matrix.shape} and edges {edges.shape} must agree on the number of columns")
    bins = edges.shape[1] - 1
    counts = np.zeros((matrix.shape[1], bins), dtype=np.float64)
    for column in range(matrix.shape[1]):
        present = matrix[~np.isnan(matrix[:, column]), column]
        index = np.clip(np.searchsorted(edges[column], present, side="right") - 1, 0, bins - 1)
        counts[column] = np.bincount(index, minlength=bins)
    return counts


def merge_histograms(parts: Sequence[np.ndarray]) -> np.ndarray:
    if not parts:
        raise ValueError("merge_histograms needs at least one histogram")
    return np.sum(parts, axis=0)


def quantiles(counts: np.ndarray, edges: np.ndarray, probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
    """(columns, len(probabilities)) quantiles, linear within the bin that holds each one.

    Counts may be noisy (DP): negative bins count as empty. A column with no
    count gets NaN.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if ((probs < 0) | (probs > 1)).any():
        raise ValueError(f"probabilities must be in [0, 1], got {probs.tolist()}")
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 0.0)
    out = np.full((counts.shape[0], len(probs)), np.nan)
    for column in range(counts.shape[0]):
        total = counts[column].sum()
        if total <= 0:
            continue
        cumulative = np.concatenate([[0.0], np.cumsum(counts[column])]) / total
        # the edge where the cumulative share first reaches p, interpolated inside its bin
        out[column] = np.interp(probs, _strictly_increasing(cumulative), edges[column])
    return out


def _strictly_increasing(cumulative: np.ndarray) -> np.ndarray:
    """Empty bins make flat runs, which np.interp cannot invert; nudge them apart by a negligible step."""
    return cumulative + np.arange(len(cumulative)) * 1e-12
