"""Feature engineering: fixed transforms applied to a dataset before training."""

from aureon.features.cache import take_rows
from aureon.features.prepare import SPLITS, prepare_dataset

__all__ = ["SPLITS", "prepare_dataset", "take_rows"]
