"""Candidate features made from numeric columns, and the mutual-information score of each.

A candidate is (operation, column a, column b); it is computed from the
imputed raw values, so every client makes exactly the same column. Each
client scores candidates on its own rows (at most ``features.score_rows`` of
them, drawn by ``scoring_rows``: the kNN estimate costs O(rows log rows) per
candidate, and a few thousand rows rank candidates as well as all of them);
the server averages the scores (weighted by rows) and keeps the best.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

UNARY = ("log", "square")
BINARY = ("product", "ratio", "difference")
RATIO_FLOOR = 1e-6  # a / b is computed as a * b / (b^2 + floor): finite where b is 0

Candidate = tuple[str, int, int]  # (operation, column a, column b); b = -1 for a unary operation


def candidates(columns: Sequence[int]) -> list[Candidate]:
    """Unary operations of each column, then binary operations of each pair (ratio both ways)."""
    out: list[Candidate] = [(op, a, -1) for a in columns for op in UNARY]
    for a, b in combinations(columns, 2):
        out += [("product", a, b), ("difference", a, b), ("ratio", a, b), ("ratio", b, a)]
    return out


def compute(values: np.ndarray, specs: Sequence[Candidate]) -> np.ndarray:
    """(rows, len(specs)) candidate columns of an imputed numeric matrix."""
    out = np.empty((values.shape[0], len(specs)), dtype=np.float64)
    for j, (op, a, b) in enumerate(specs):
        x = values[:, a]
        if op == "log":
            out[:, j] = np.sign(x) * np.log1p(np.abs(x))
        elif op == "square":
            out[:, j] = x * x
        elif op == "product":
            out[:, j] = x * values[:, b]
        elif op == "difference":
            out[:, j] = x - values[:, b]
        elif op == "ratio":
            y = values[:, b]
            out[:, j] = x * y / (y * y + RATIO_FLOOR)
        else:
            raise ValueError(f"unknown feature operation {op!r}; expected one of {UNARY + BINARY}")
    return out


def name(spec: Candidate, columns: Sequence[str]) -> str:
    op, a, b = spec
    return f"{op}({columns[a]})" if b < 0 else f"{op}({columns[a]},{columns[b]})"


def mutual_information(
    values: np.ndarray, target: np.ndarray, *, task: str, seed: int, neighbors: int = 3
) -> np.ndarray:
    """scikit-learn's mutual information of each column with the target (0 for too few rows).

    On one thread: its nearest-neighbour search starts a thread pool per column, which on a
    small table costs far more than the search (wine, 5 clients: 111 s on all threads, 13 s on one).
    """
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression
    from threadpoolctl import threadpool_limits

    if len(values) <= neighbors + 1:
        return np.zeros(values.shape[1])
    score = mutual_info_classif if task == "classification" else mutual_info_regression
    with threadpool_limits(limits=1):
        result: np.ndarray = score(values, target, n_neighbors=neighbors, random_state=seed)
    return result


def scoring_rows(target: np.ndarray, *, cap: int | None, classification: bool, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of at most ``cap`` rows to score on (every row where there are no more; None: no cap).

    For classes, a stratified draw: every class keeps at least min(its rows, cap / (4 * classes))
    rows, so a rare class (0.17% positives: ~8 of 5,000 in a uniform draw) keeps its rows, and the
    rest of the cap goes to the classes in proportion to their rows. ``rng`` is the client's own.
    """
    rows = len(target)
    if cap is not None and cap < 1:
        raise ValueError(f"cap must be >= 1 or None, got {cap}")
    if cap is None or rows <= cap:
        return np.arange(rows)
    if not classification:
        return np.sort(rng.choice(rows, size=cap, replace=False))
    _, inverse, counts = np.unique(target, return_inverse=True, return_counts=True)
    take = class_allocation(counts, cap)
    chosen = [
        rng.choice(np.flatnonzero(inverse == label), size=int(k), replace=False)
        for label, k in enumerate(take)
        if k > 0
    ]
    return np.sort(np.concatenate(chosen))


def class_allocation(counts: np.ndarray, cap: int) -> np.ndarray:
    """Rows to draw per class (summing to ``cap`` <= counts.sum()): a floor per class, the rest proportional."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if not 1 <= cap <= total:
        raise ValueError(f"cap must be in [1, {total}] (the rows held), got {cap}")
    take = np.minimum(counts, cap // (4 * len(counts)))
    spare, extra = cap - int(take.sum()), counts - take
    exact = spare * extra / max(int(extra.sum()), 1)  # <= extra, since cap <= total
    share = np.floor(exact).astype(np.int64)
    leftover = spare - int(share.sum())  # < classes; given to the largest remainders (each still < extra)
    share[np.argsort(-(exact - share), kind="stable")[:leftover]] += 1
    return take + share
