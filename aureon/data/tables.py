"""Tables: typed, checked columns and a target, the input of the tabular feature strategies.

``load_table`` reads a dataset config's table (its ``reader``), checks it and
types its columns: numeric columns become float64 with NaN for a missing
value, categorical columns strings with NaN for a missing value. A table
that cannot be trusted is refused with the column (and row) at fault rather
than passed on: a missing target column, a column with no value at all, a
non-numeric value in a numeric column.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np
import pandas as pd

from aureon.config.dataset import TabularDatasetConfig
from aureon.data.datasets import Dataset
from aureon.exceptions import DataError

Task = Literal["classification", "regression"]

# An integer target with at most this many distinct values is taken for classes.
MAX_INFERRED_CLASSES = 50
# An untyped text column is refused (not silently made categorical) when at least
# this share of its values parse as numbers: a stray string in a numeric column.
NUMERIC_SHARE = 0.9


@dataclass(frozen=True)
class Table:
    """Rows of typed columns and a target; ``numeric`` + ``categorical`` are exactly the columns."""

    name: str
    features: pd.DataFrame
    target: pd.Series
    task: Task
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    def __post_init__(self) -> None:
        if list(self.features.columns) != [*self.numeric, *self.categorical]:
            raise ValueError(
                f"table {self.name!r}: columns {list(self.features.columns)} must be the numeric columns "
                f"{list(self.numeric)} then the categorical ones {list(self.categorical)}"
            )
        if len(self.features) != len(self.target):
            raise ValueError(f"table {self.name!r}: {len(self.features)} rows but {len(self.target)} targets")

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def __len__(self) -> int:
        return len(self.features)

    def take(self, rows: np.ndarray | Sequence[int]) -> Table:
        """The table of the rows at positions ``rows`` (renumbered from 0)."""
        positions = np.asarray(rows, dtype=np.int64)
        return replace(
            self,
            features=self.features.iloc[positions].reset_index(drop=True),
            target=self.target.iloc[positions].reset_index(drop=True),
        )


def _reader(config: TabularDatasetConfig) -> Callable[[TabularDatasetConfig], pd.DataFrame]:
    module_name, _, attribute = config.reader().rpartition(".")
    reader = getattr(importlib.import_module(module_name), attribute)
    return cast(Callable[[TabularDatasetConfig], pd.DataFrame], reader)


def load_table(config: TabularDatasetConfig) -> Table:
    """The table ``config`` names, checked and typed (see the module docstring)."""
    frame = _reader(config)(config)
    return table_from_frame(
        frame,
        name=config.name,
        target=config.target,
        task=config.task,
        categorical=config.categorical,
        numeric=config.numeric,
        where=f"dataset={config.name}" + (f" ({config.path})" if config.path else ""),
    )


def table_from_frame(
    frame: pd.DataFrame,
    *,
    name: str,
    target: str | None,
    task: str | None = None,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    where: str = "the table",
) -> Table:
    """Check and type ``frame`` (the target one of its columns); the rules of ``load_table``."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1).reset_index(drop=True)
    if len(set(columns)) != len(columns):
        twice = sorted({c for c in columns if columns.count(c) > 1})
        raise DataError(f"{where}: column names must be unique, got {twice} more than once")
    if not target or target not in columns:
        raise DataError(f"{where}: dataset.target={target!r} is not a column; the columns are {columns}")
    for key, given in (("dataset.categorical", categorical), ("dataset.numeric", numeric)):
        unknown = [c for c in given if c not in columns or c == target]
        if unknown:
            raise DataError(f"{where}: {key} names {unknown}, which are not feature columns; they are {columns}")
    if frame.empty:
        raise DataError(f"{where}: the table has no rows")
    y = frame[target]
    missing_target = np.flatnonzero(y.isna().to_numpy())
    if len(missing_target):
        raise DataError(
            f"{where}: the target column {target!r} is missing in {len(missing_target)} rows "
            f"(first: row {missing_target[0] + 1}); drop or fill those rows"
        )
    features = frame.drop(columns=[target])
    empty = [c for c in features.columns if features[c].isna().all()]
    if empty:
        raise DataError(f"{where}: column(s) {empty} hold no value at all (every row missing); drop them")
    numeric_columns: list[str] = []
    categorical_columns: list[str] = []
    typed: dict[str, pd.Series] = {}
    for column in features.columns:
        values = features[column]
        if column in categorical:
            kind = "categorical"
        elif column in numeric:
            kind = "numeric"
        else:
            kind = _inferred_kind(values, column=column, where=where)
        if kind == "numeric":
            typed[column] = _as_numeric(values, column=column, where=where)
            numeric_columns.append(column)
        else:
            typed[column] = values.astype("string").astype(object).where(values.notna(), np.nan)
            categorical_columns.append(column)
    ordered = pd.DataFrame({c: typed[c] for c in [*numeric_columns, *categorical_columns]})
    return Table(
        name=name,
        features=ordered,
        target=y.reset_index(drop=True),
        task=_task(y, task),
        numeric=tuple(numeric_columns),
        categorical=tuple(categorical_columns),
    )


def _inferred_kind(values: pd.Series, *, column: str, where: str) -> str:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return "numeric"
    present = values.dropna()
    parsed = pd.to_numeric(present, errors="coerce")
    if len(present) and parsed.notna().mean() >= NUMERIC_SHARE:
        _as_numeric(values, column=column, where=where)  # raises, naming the first stray value
    return "categorical"


def _as_numeric(values: pd.Series, *, column: str, where: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64)
    parsed = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero((parsed.isna() & values.notna()).to_numpy())
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"{where}: column {column!r} is numeric but row {row + 1} holds {values.iloc[row]!r} "
            f"({len(bad)} such value(s)); fix the value, leave it empty for a missing one, "
            f"or declare the column with dataset.categorical=[{column}]"
        )
    return parsed.astype(np.float64)


def _task(y: pd.Series, given: str | None) -> Task:
    if given is not None:
        if given not in ("classification", "regression"):
            raise DataError(f"dataset.task must be 'classification' or 'regression', got {given!r}")
        if given == "regression" and not pd.api.types.is_numeric_dtype(y):
            raise DataError(f"dataset.task='regression' needs a numeric target, got dtype {y.dtype}")
        return cast(Task, given)
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    whole = bool(np.all(np.mod(y.to_numpy(dtype=np.float64), 1.0) == 0.0))
    return "classification" if whole and y.nunique() <= MAX_INFERRED_CLASSES else "regression"


# ---------------------------------------------------------------- split, labels


def split_table(table: Table, *, test_fraction: float, seed: int) -> tuple[Table, Table]:
    """A train/test split of the rows (stratified by class for classification)."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(table))
    stratify = table.target.to_numpy() if table.task == "classification" else None
    train, test = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=stratify)
    return table.take(np.sort(train)), table.take(np.sort(test))


def class_labels(train: Table, *others: Table) -> tuple[list[np.ndarray], int]:
    """Targets as arrays: class indices (int64, classes in sorted order) or values (float32).

    The classes are those of every table given; a regression target gives one output.
    """
    if train.task == "regression":
        return [t.target.to_numpy(dtype=np.float32) for t in (train, *others)], 1
    classes = np.unique(np.concatenate([t.target.astype(str).to_numpy() for t in (train, *others)]))
    return [np.searchsorted(classes, t.target.astype(str).to_numpy()).astype(np.int64) for t in (train, *others)], len(
        classes
    )


def numeric_matrix(table: Table) -> np.ndarray:
    """The table as a float32 matrix, for a table that is all numeric and complete."""
    if table.categorical:
        raise DataError(
            f"dataset={table.name}: categorical column(s) {list(table.categorical)} need encoding; "
            "choose a tabular features strategy (features=onehot, ...)"
        )
    gaps = [c for c in table.numeric if table.features[c].isna().any()]
    if gaps:
        raise DataError(
            f"dataset={table.name}: column(s) {gaps} have missing values; "
            "choose a features strategy that imputes (features=impute, ...)"
        )
    return table.features.to_numpy(dtype=np.float32)


def tabular_dataset(config: TabularDatasetConfig, *, seed: int) -> Dataset:
    """The builder of every table option: the split table as arrays, columns as they are.

    A tabular features strategy (conf/features/) reads the table itself through
    ``load_table``; this is what features=none trains on.
    """
    train, test = split_table(load_table(config), test_fraction=config.test_fraction, seed=seed)
    (y_train, y_test), num_classes = class_labels(train, test)
    return Dataset(
        numeric_matrix(train), y_train, numeric_matrix(test), y_test, num_classes=num_classes, task=train.task
    )
