"""Per-column moments of numeric columns: what one client sends, and their exact sum over clients.

Counts, missing counts, sums and sums of squares add up across clients, and
minima/maxima combine by min/max, so the merged summary of the clients'
summaries equals the summary of their pooled rows (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NumericSummary:
    """Per column: non-missing count, missing count, sum, sum of squares, min and max (NaN: no value)."""

    count: np.ndarray
    missing: np.ndarray
    sum: np.ndarray
    sum_squares: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.sum / np.maximum(self.count, 1)

    @property
    def variance(self) -> np.ndarray:
        """Population variance (what StandardScaler divides by), never below 0."""
        mean = self.mean
        return np.maximum(self.sum_squares / np.maximum(self.count, 1) - mean * mean, 0.0)


def summarize(values: np.ndarray) -> NumericSummary:
    """The summary of a (rows, columns) float matrix whose NaN cells are missing."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a (rows, columns) matrix, got shape {matrix.shape}")
    present = ~np.isnan(matrix)
    filled = np.where(present, matrix, 0.0)
    any_value = present.any(axis=0)
    with np.errstate(all="ignore"):
        low = np.where(any_value, np.nanmin(np.where(present, matrix, np.inf), axis=0), np.nan)
        high = np.where(any_value, np.nanmax(np.where(present, matrix, -np.inf), axis=0), np.nan)
    return NumericSummary(
        count=present.sum(axis=0).astype(np.float64),
        missing=(~present).sum(axis=0).astype(np.float64),
        sum=filled.sum(axis=0),
        sum_squares=(filled * filled).sum(axis=0),
        minimum=low,
        maximum=high,
    )


def merge_summaries(parts: Sequence[NumericSummary]) -> NumericSummary:
    """The summary of the pooled rows of ``parts`` (all over the same columns)."""
    if not parts:
        raise ValueError("merge_summaries needs at least one summary")
    return NumericSummary(
        count=np.sum([p.count for p in parts], axis=0),
        missing=np.sum([p.missing for p in parts], axis=0),
        sum=np.sum([p.sum for p in parts], axis=0),
        sum_squares=np.sum([p.sum_squares for p in parts], axis=0),
        minimum=np.fmin.reduce([p.minimum for p in parts]),
        maximum=np.fmax.reduce([p.maximum for p in parts]),
    )
