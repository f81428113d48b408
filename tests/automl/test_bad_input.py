"""Bad input stops the search before any trial, with one line naming the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon.automl.search import run_table_search
from aureon.automl.storage import JOURNAL_FILE
from aureon.exceptions import AureonError, ConfigError
from aureon.launch.run_config import compose_config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "automl.space.svm.C=[10.0,1.0]",
            r"^automl.space.svm.C must be a non-empty range \[low, high\] with low < high, got \[10.0, 1.0\]",
        ),
        ("automl.space.knn.n_neighbors=[5,5]", r"^automl.space.knn.n_neighbors must be a non-empty range"),
        (
            "automl.families=[random_forest,xgboost]",
            r"^automl.families must be a model family among linear, random_forest, .*got 'xgboost'",
        ),
        ("+automl.space.catboost={depth:[1,2]}", r"^automl.space.catboost must be a model family among"),
        (
            "+automl.space.svm.depth=[1,2]",
            r"^automl.space.svm.depth is not a parameter of svm; expected one of C, gamma, epsilon",
        ),
        ("automl.time_budget=0", r"^automl.time_budget must be > 0 seconds, got 0.0"),
        ("automl.time_budget=-5", r"^automl.time_budget must be > 0 seconds, got -5.0"),
        ("automl.n_workers=0", r"^automl.n_workers must be an integer >= 1, got 0"),
        ("automl.mode=distributed", r"^automl.mode must be one of centralized, federated, got 'distributed'"),
        (
            "automl.storage=/tmp/study.db",
            r"^automl.storage must be null \(a journal file in the run directory\) or a database URL",
        ),
    ],
)
def test_a_bad_search_setting_names_its_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        compose_config(["dataset=wine", override])
    assert "\n" not in str(error.value)


def _search(tmp_path: Path, overrides: list[str]) -> None:
    config = compose_config(["automl.live=false", "automl.time_budget=30", *overrides])
    run_table_search(config, tmp_path / "run")


def _no_trial_ran(tmp_path: Path) -> bool:
    journal = tmp_path / "run" / JOURNAL_FILE
    return not journal.exists() or '"op_code": 4' not in journal.read_text()  # op 4: a trial created


def test_a_target_column_that_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    with pytest.raises(AureonError, match=r"dataset.target='price' is not a column; the columns are \['a', 'b', 'y'\]"):
        _search(tmp_path, ["dataset=table", f"dataset.path={tmp_path / 't.csv'}", "dataset.target=price"])
    assert not (tmp_path / "run" / "leaderboard.csv").exists()


def test_a_classification_target_with_one_class(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},yes\n" for i in range(30)))
    overrides = [
        "dataset=table",
        f"dataset.path={tmp_path / 't.csv'}",
        "dataset.target=y",
        "dataset.task=classification",
    ]
    with pytest.raises(
        ConfigError, match=r"^dataset.target='y' must hold at least 2 classes for classification, got 1"
    ):
        _search(tmp_path, overrides)
    assert _no_trial_ran(tmp_path)


def test_a_storage_url_that_cannot_be_reached(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://aureon:secret@127.0.0.1:{port}/studies"
    with pytest.raises(ConfigError, match=r"^automl.storage must be a database URL this machine can reach") as error:
        _search(tmp_path, ["dataset=wine", f"automl.storage={url}"])
    assert "secret" not in str(error.value)  # the password is not echoed
    assert not (tmp_path / "run" / "leaderboard.csv").exists()


def test_a_dataset_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^dataset must be a table for simulations.automl mode=centralized"):
        _search(tmp_path, ["dataset=digits"])
