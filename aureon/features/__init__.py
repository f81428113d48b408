"""Feature engineering: fixed transforms applied to a dataset before training."""

from aureon.features.cache import take_rows
from aureon.features.prepare import SPLITS, partition_cache_dir, prepare_dataset

__all__ = ["SPLITS", "partition_cache_dir", "prepare_dataset", "take_rows"]
