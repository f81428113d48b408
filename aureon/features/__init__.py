"""Feature engineering: fixed transforms applied to a dataset before training."""

from aureon.features.prepare import prepare_dataset

__all__ = ["prepare_dataset"]
