"""Datasets (offline and local-folder loaders) and their partitioning among clients."""

from aureon.data.datasets import Dataset, load_dataset
from aureon.data.partition import client_indices, partition_indices

__all__ = ["Dataset", "client_indices", "load_dataset", "partition_indices"]
