"""Partitions from flwr-datasets: disjoint, complete, and as skewed as asked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aureon.config import DirichletPartitionConfig, IidPartitionConfig
from aureon.data import client_indices, partition_indices
from aureon.exceptions import ConfigError


def _labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=n).astype(np.int64)


def _assert_disjoint_and_complete(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert len(np.unique(joined)) == n


@settings(max_examples=15, deadline=None)
@given(n=st.integers(20, 400), k=st.integers(1, 10))
def test_iid_partitions_are_disjoint_complete_and_balanced(n: int, k: int) -> None:
    parts = partition_indices(_labels(n), IidPartitionConfig(), k, seed=0)
    _assert_disjoint_and_complete(parts, n)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("alpha", [0.1, 0.5, 100.0])
def test_dirichlet_partitions_are_disjoint_and_complete(alpha: float) -> None:
    parts = partition_indices(
        _labels(2000), DirichletPartitionConfig(alpha=alpha, min_partition_size=5), 8, seed=1
    )
    _assert_disjoint_and_complete(parts, 2000)
    assert min(len(p) for p in parts) >= 5


def test_small_alpha_skews_labels_more_than_large_alpha() -> None:
    labels = _labels(5000)

    def mean_label_share_of_top_class(alpha: float) -> float:
        parts = partition_indices(labels, DirichletPartitionConfig(alpha=alpha), 10, seed=2)
        return float(np.mean([np.bincount(labels[p], minlength=10).max() / len(p) for p in parts]))

    assert mean_label_share_of_top_class(0.1) > mean_label_share_of_top_class(100.0) + 0.2


def test_client_indices_match_the_full_split_and_check_the_id() -> None:
    labels = _labels(500)
    config = DirichletPartitionConfig(alpha=0.5)
    full = partition_indices(labels, config, 4, seed=3)
    for pid in range(4):
        np.testing.assert_array_equal(client_indices(labels, config, pid, 4, seed=3), full[pid])
    with pytest.raises(ConfigError, match=r"partition-id must be in \[0, 4\), got 4"):
        client_indices(labels, config, 4, 4, seed=3)


def test_more_clients_than_examples_is_refused() -> None:
    with pytest.raises(ConfigError, match="num_clients must be <= the number of training"):
        partition_indices(_labels(3), IidPartitionConfig(), 5, seed=0)
