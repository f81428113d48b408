"""``partition`` group: how the training split is divided among clients."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register


@dataclass
class PartitionConfig:
    """How the training split is divided among clients (flwr-datasets partitioners)."""

    name: str = MISSING


@register("partition", "iid", builder="aureon.data.partition.iid_partitioner")
@dataclass
class IidPartitionConfig(PartitionConfig):
    name: str = "iid"


@register("partition", "dirichlet", builder="aureon.data.partition.dirichlet_partitioner")
@dataclass
class DirichletPartitionConfig(PartitionConfig):
    name: str = "dirichlet"
    alpha: float = 0.5
    min_partition_size: int = 10
    self_balancing: bool = True

    def validate(self) -> None:
        require(self.alpha > 0, "partition.alpha", self.alpha, "> 0")
        require(
            self.min_partition_size >= 0,
            "partition.min_partition_size",
            self.min_partition_size,
            ">= 0",
        )
