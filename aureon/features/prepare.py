"""Apply the configured feature transform to a loaded dataset, once per machine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from aureon.config import DatasetConfig, FeaturesConfig, ScatteringFeaturesConfig
from aureon.data import Dataset, load_dataset
from aureon.features.cache import cached_arrays, content_key, default_cache_dir
from aureon.features.scattering import scattering_features


def _scattered(dataset: Dataset, config: ScatteringFeaturesConfig) -> Dataset:
    settings = f"scattering J={config.J} L={config.orientations}"
    key = content_key([dataset.x_train, dataset.x_test], settings)
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()

    def compute() -> list[np.ndarray]:
        return [
            scattering_features(x, J=config.J, orientations=config.orientations)
            for x in (dataset.x_train, dataset.x_test)
        ]

    x_train, x_test = cached_arrays(cache_dir, key, ["train", "test"], compute)
    return replace(dataset, x_train=x_train, x_test=x_test)


_PREPARED: dict[str, Dataset] = {}
_KEPT = 2  # datasets kept per process, newest last


def prepare_dataset(dataset_config: DatasetConfig, seed: int, features: FeaturesConfig) -> Dataset:
    """The dataset as the model sees it: loaded, then transformed by ``features``.

    Kept per process (simulated clients train many rounds in one worker) and on
    disk (the transform's cost is paid once per machine, not once per run).
    """
    dataset = load_dataset(dataset_config, seed)
    if not isinstance(features, ScatteringFeaturesConfig):
        return dataset
    key = repr((dataset_config, seed, features))
    if key not in _PREPARED:
        _PREPARED[key] = _scattered(dataset, features)
        while len(_PREPARED) > _KEPT:
            del _PREPARED[next(iter(_PREPARED))]
    return _PREPARED[key]
