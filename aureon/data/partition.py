"""Split a training set among clients with flwr-datasets' partitioners.

``build_partitioner`` dispatches through the config registry; ``iid_partitioner``
and ``dirichlet_partitioner`` are the builders the partition configs name.
flwr-datasets (with Hugging Face ``datasets``, pyarrow and pandas behind it) is
imported only when a split is actually computed: with the on-disk partition
cache (``aureon.data.partition_cache``) a simulated client reads its indices
and never pays for those imports.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aureon.config import DirichletPartitionConfig, IidPartitionConfig, PartitionConfig
from aureon.config.registry import REGISTRY
from aureon.exceptions import ConfigError

if TYPE_CHECKING:
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner, Partitioner


def build_partitioner(config: PartitionConfig, num_partitions: int, seed: int) -> Partitioner:
    """The flwr-datasets partitioner a config names."""
    from flwr_datasets.partitioner import Partitioner

    return REGISTRY.build("partition", config, expect=Partitioner, num_partitions=num_partitions, seed=seed)


def iid_partitioner(config: IidPartitionConfig, *, num_partitions: int, seed: int) -> IidPartitioner:
    from flwr_datasets.partitioner import IidPartitioner

    del config, seed  # flwr-datasets cuts contiguous equal shares; it takes no seed
    return IidPartitioner(num_partitions=num_partitions)


def dirichlet_partitioner(config: DirichletPartitionConfig, *, num_partitions: int, seed: int) -> DirichletPartitioner:
    from flwr_datasets.partitioner import DirichletPartitioner

    return DirichletPartitioner(
        num_partitions=num_partitions,
        partition_by="label",
        alpha=config.alpha,
        min_partition_size=config.min_partition_size,
        self_balancing=config.self_balancing,
        shuffle=True,
        seed=seed,
    )


def partition_indices(labels: np.ndarray, config: PartitionConfig, num_partitions: int, seed: int) -> list[np.ndarray]:
    """Indices into ``labels`` for each partition: disjoint and together complete."""
    if num_partitions > len(labels):
        raise ConfigError(
            f"num_clients must be <= the number of training examples ({len(labels)}), got {num_partitions}"
        )
    from datasets import Dataset as HFDataset

    table = HFDataset.from_dict({"label": labels.astype(np.int64), "index": np.arange(len(labels), dtype=np.int64)})
    partitioner = build_partitioner(config, num_partitions, seed)
    partitioner.dataset = table
    return [np.asarray(partitioner.load_partition(pid)["index"], dtype=np.int64) for pid in range(num_partitions)]


@lru_cache(maxsize=4)
def _cached_indices(
    labels_key: bytes,
    config_type: type[PartitionConfig],
    config_items: tuple[tuple[str, object], ...],
    num_partitions: int,
    seed: int,
) -> tuple[np.ndarray, ...]:
    labels = np.frombuffer(labels_key, dtype=np.int64)
    config = config_type(**dict(config_items))  # type: ignore[arg-type]
    return tuple(partition_indices(labels, config, num_partitions, seed))


def client_indices(
    labels: np.ndarray,
    config: PartitionConfig,
    partition_id: int,
    num_partitions: int,
    seed: int,
    *,
    cache_dir: Path | str | None = None,
) -> np.ndarray:
    """One client's indices.

    Without ``cache_dir`` the whole split is computed once per process and
    reused; with it, the split is computed once per machine (by whichever
    process needs it first) and each process reads only its own slice.
    """
    if not 0 <= partition_id < num_partitions:
        raise ConfigError(f"partition-id must be in [0, {num_partitions}), got {partition_id}")
    if cache_dir is not None:
        from aureon.data.partition_cache import PartitionCache

        return PartitionCache(cache_dir).client_indices(labels, config, partition_id, num_partitions, seed)
    labels_key = np.ascontiguousarray(labels, dtype=np.int64).tobytes()
    items = tuple(sorted(dataclasses.asdict(config).items()))
    return _cached_indices(labels_key, type(config), items, num_partitions, seed)[partition_id]  # type: ignore[arg-type]
