"""Category counts per column, summed over clients, and the shared one-hot vocabulary.

A category enters the vocabulary only when its total count reaches
``min_count`` and at least ``min_clients`` clients hold it; the others are
merged into one "other" column, so a category held by a single client does not
reach the other clients through the vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from aureon.exceptions import ConfigError

MISSING_TOKEN = "<missing>"  # a missing categorical value is a category of its own
OTHER_TOKEN = "<other>"

CategoryCounts = dict[str, dict[str, float]]  # column -> category -> count


def category_counts(frame: pd.DataFrame, columns: Sequence[str]) -> CategoryCounts:
    """Each column's count of every value (missing values counted as ``MISSING_TOKEN``)."""
    out: CategoryCounts = {}
    for column in columns:
        values = frame[column].astype(object).where(frame[column].notna(), MISSING_TOKEN).astype(str)
        counted = values.value_counts(sort=False)
        out[column] = {str(k): float(v) for k, v in counted.items()}
    return out


def merge_category_counts(parts: Sequence[CategoryCounts]) -> tuple[CategoryCounts, CategoryCounts]:
    """The summed counts, and per category how many clients reported a count > 0.5 of it."""
    totals: CategoryCounts = {}
    holders: CategoryCounts = {}
    for part in parts:
        for column, counts in part.items():
            total = totals.setdefault(column, {})
            held = holders.setdefault(column, {})
            for category, count in counts.items():
                total[category] = total.get(category, 0.0) + count
                held[category] = held.get(category, 0.0) + (1.0 if count > 0.5 else 0.0)
    return totals, holders


def vocabulary(
    totals: Mapping[str, float],
    holders: Mapping[str, float],
    *,
    column: str,
    min_count: float,
    min_clients: int,
    max_categories: int,
) -> list[str]:
    """The categories of ``column`` that get their own one-hot column, most frequent first.

    More qualifying categories than ``max_categories`` is an error rather than a
    silent cut: a high-cardinality column (an id, a zip code) wants another
    encoding, or a higher cap.
    """
    kept = [
        category
        for category, count in totals.items()
        if count >= min_count and holders.get(category, 0.0) >= min_clients
    ]
    if len(kept) > max_categories:
        raise ConfigError(
            f"features.max_categories must be >= the {len(kept)} categories of column {column!r} "
            f"that pass features.min_count={min_count:g} and features.min_clients={min_clients}, "
            f"got {max_categories}; raise the cap or min_count, or drop the column"
        )
    return sorted(kept, key=lambda c: (-totals[c], c))


def one_hot(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """(rows, len(categories) + 1): one column per category, the last for everything else."""
    tokens = values.astype(object).where(values.notna(), MISSING_TOKEN).astype(str).to_numpy()
    index = {c: i for i, c in enumerate(categories)}
    positions = np.array([index.get(t, len(categories)) for t in tokens], dtype=np.int64)
    out = np.zeros((len(tokens), len(categories) + 1), dtype=np.float64)
    out[np.arange(len(tokens)), positions] = 1.0
    return out
