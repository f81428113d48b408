"""Tables: the packaged ones load typed, a local CSV/Parquet file loads with inferred or given types,
and a table that cannot be trusted is refused naming its column (and row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aureon.config.dataset import TableFileConfig
from aureon.data import load_dataset
from aureon.data.tables import load_table, split_table
from aureon.exceptions import ConfigError, DataError
from aureon.launch.run_config import compose_config


@pytest.mark.parametrize(
    ("name", "task", "columns", "rows"),
    [
        ("breast_cancer", "classification", 30, 569),
        ("wine", "classification", 13, 178),
        ("diabetes", "regression", 10, 442),
        ("boston_housing", "regression", 13, 506),
    ],
)
def test_packaged_tables_load_typed(name: str, task: str, columns: int, rows: int) -> None:
    table = load_table(compose_config([f"dataset={name}"]).dataset)
    assert (table.task, len(table.numeric), table.categorical, len(table)) == (task, columns, (), rows)
    assert table.target.name not in table.features.columns


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MIXED = "age,city,income,label\n30,Paris,10.5,yes\n,Lyon,,no\n41,,7,yes\n52,Paris,3.25,no\n"


def test_a_csv_with_missing_values_and_text_columns_is_typed_by_inference(tmp_path: Path) -> None:
    config = TableFileConfig(path=str(_csv(tmp_path, MIXED)), target="label")
    table = load_table(config)
    assert table.numeric == ("age", "income") and table.categorical == ("city",)
    assert table.task == "classification"
    assert np.isnan(table.features["age"].iloc[1]) and pd.isna(table.features["city"].iloc[2])
    assert table.features["city"].iloc[0] == "Paris"


def test_given_types_override_inference_and_parquet_reads_the_same(tmp_path: Path) -> None:
    csv = _csv(tmp_path, MIXED)
    parquet = tmp_path / "t.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    for path in (csv, parquet):
        table = load_table(TableFileConfig(path=str(path), target="label", categorical=["age"]))
        assert table.numeric == ("income",) and table.categorical == ("age", "city")


def test_features_none_refuses_a_table_that_needs_encoding_or_imputation(tmp_path: Path) -> None:
    config = TableFileConfig(path=str(_csv(tmp_path, MIXED)), target="label", test_fraction=0.5)
    with pytest.raises(DataError, match=r"categorical column\(s\) \['city'\] need encoding"):
        load_dataset(config, 0)


def test_the_split_is_stratified_and_complete() -> None:
    table = load_table(compose_config(["dataset=breast_cancer"]).dataset)
    train, test = split_table(table, test_fraction=0.2, seed=3)
    assert len(train) + len(test) == len(table) and len(test) == 114
    assert abs(train.target.mean() - test.target.mean()) < 0.02


# ------------------------------------------------------------------ bad input
def test_a_missing_target_column_is_named_with_the_columns(tmp_path: Path) -> None:
    config = TableFileConfig(path=str(_csv(tmp_path, MIXED)), target="outcome")
    with pytest.raises(DataError, match=r"dataset.target='outcome' is not a column; the columns are \['age'"):
        load_table(config)


def test_an_all_missing_column_is_refused_by_name(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,empty,y\n1,,0\n2,,1\n")
    with pytest.raises(DataError, match=r"column\(s\) \['empty'\] hold no value at all"):
        load_table(TableFileConfig(path=str(path), target="y"))


def test_a_text_value_in_a_numeric_column_names_its_row_and_column(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 2}\n" for i in range(20))
    path = _csv(tmp_path, "dose,y\n" + rows + "n/a?,1\n")
    with pytest.raises(DataError, match=r"column 'dose' is numeric but row 21 holds 'n/a\?'"):
        load_table(TableFileConfig(path=str(path), target="y"))
    declared = _csv(tmp_path, "dose,y\n1,0\nabc,1\n", "declared.csv")
    with pytest.raises(DataError, match=r"column 'dose' is numeric but row 2 holds 'abc'"):
        load_table(TableFileConfig(path=str(declared), target="y", numeric=["dose"]))


def test_an_unreadable_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken.parquet'?: unreadable as a table"):
        load_table(TableFileConfig(path=str(path), target="y"))


def test_the_table_option_needs_a_path_and_a_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dataset.path must be a local .csv"):
        compose_config(["dataset=table", "dataset.target=y"])
    path = _csv(tmp_path, MIXED)
    with pytest.raises(ConfigError, match=r"dataset.target must be the name of the target column"):
        compose_config(["dataset=table", f"dataset.path={path}"])
    with pytest.raises(ConfigError, match=r"dataset.task must be null \(inferred\)"):
        compose_config(["dataset=table", f"dataset.path={path}", "dataset.target=label", "dataset.task=ranking"])


def test_every_table_option_has_its_reader() -> None:
    # reader() is derived from the option's name: a new option without read_<name> must fail here, not at run time
    import importlib

    from aureon.config.dataset import TabularDatasetConfig
    from aureon.config.registry import REGISTRY

    options = [o.schema() for o in REGISTRY.options("dataset").values()]
    tables = [o for o in options if isinstance(o, TabularDatasetConfig)]
    assert {t.name for t in tables} >= {"breast_cancer", "wine", "diabetes", "boston_housing", "digits_table", "table"}
    for table in tables:
        module, _, name = table.reader().rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), table.name
