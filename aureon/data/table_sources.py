"""Readers of whole tables: the packaged ones (scikit-learn, mlxtend) and local CSV/Parquet files.

Each returns the raw ``pandas.DataFrame`` with its target as one of the
columns; ``aureon.data.tables`` checks it, types its columns and splits it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aureon.config.dataset import TabularDatasetConfig
from aureon.exceptions import DataError, describe


def _sklearn_frame(loader_name: str) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    return frame


def read_breast_cancer(config: TabularDatasetConfig) -> pd.DataFrame:
    del config
    return _sklearn_frame("load_breast_cancer")


def read_wine(config: TabularDatasetConfig) -> pd.DataFrame:
    del config
    return _sklearn_frame("load_wine")


def read_digits_table(config: TabularDatasetConfig) -> pd.DataFrame:
    """scikit-learn's digits: 64 pixel intensities (0-16) per row, the digit as ``target``."""
    del config
    return _sklearn_frame("load_digits")


def read_diabetes(config: TabularDatasetConfig) -> pd.DataFrame:
    """scikit-learn's diabetes table, unscaled (the raw values, not its centred version)."""
    del config
    import sklearn.datasets

    bunch = sklearn.datasets.load_diabetes(as_frame=True, scaled=False)
    frame: pd.DataFrame = bunch.frame
    return frame


BOSTON_COLUMNS = (
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
)


def read_boston_housing(config: TabularDatasetConfig) -> pd.DataFrame:
    """mlxtend's copy of the Boston housing table (13 columns, target MEDV)."""
    del config
    from mlxtend.data import boston_housing_data

    x, y = boston_housing_data()
    frame = pd.DataFrame(x, columns=list(BOSTON_COLUMNS))
    frame["MEDV"] = y
    return frame


def read_table(config: TabularDatasetConfig) -> pd.DataFrame:
    """A local CSV (optionally gzipped) or Parquet file, chosen by its suffix."""
    if not config.path:
        raise DataError("dataset.path must name a .csv or .parquet file, got None")
    path = Path(config.path).expanduser()
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv" or suffixes == ".csv.gz":
            # keep_default_na with strings only: a value is missing when empty or a usual NA marker
            return pd.read_csv(path, low_memory=False)
    except FileNotFoundError:
        raise DataError(f"dataset.path={config.path!r}: no such file") from None
    except Exception as error:  # pandas/pyarrow raise many kinds; the file is what is wrong
        raise DataError(f"dataset.path={config.path!r}: unreadable as a table ({describe(error)})") from error
    raise DataError(f"dataset.path={config.path!r}: expected a .csv, .csv.gz or .parquet file, got suffix {suffixes!r}")
