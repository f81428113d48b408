"""Per-client tables (``dataset.per_client``) through the real ServerApp and ClientApp code, in this process.

Each node composes its config with its own ``dataset.path`` (its node
config's overrides, as ``python -m clients data.path=...`` sets them); the
server holds no rows, fits the pipeline over the Message API, saves it and
sends it; the clients train and evaluate on their own rows through it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aureon import keys
from aureon.config.features import TabularFeaturesConfig
from aureon.exceptions import ConfigError, DataError
from aureon.features.tabular.deployment import agreed_schema
from aureon.features.tabular.federation import LocalFederation
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.own_table import TableSchema, own_dataset, pipeline_dir
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.pipeline_messages import pipeline_content, pipeline_digest, pipeline_from
from aureon.features.tabular.prepare import PIPELINE_DIR, fitted_dataset
from aureon.federated.apps import given_config_source, make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config, join_overrides
from tests.features.tabular.client_files import (
    ONLY_ON_CLIENT_0,
    client_config,
    pooled,
    training_tables,
    write_client_files,
)
from tests.inprocess_grid import InProcessGrid

RUN = [
    "dataset=table",
    "dataset.per_client=true",
    "dataset.target=label",
    "features=onehot",
    "model=logreg",
    "privacy=none",
    "num_clients=3",
    "num_rounds=3",
    "seed=3",
]


def _grid(paths: list[Path], state_root: Path) -> InProcessGrid:
    """Node i composes RUN with its own file, as a SuperNode started with ``data.path=<file i>`` does."""
    grid = InProcessGrid(make_client_app(given_config_source(RUN)), num_nodes=len(paths), state_root=state_root)
    for node_id, path in zip(grid.node_ids, paths, strict=True):
        grid.contexts[node_id].node_config[keys.NODE_OVERRIDES] = join_overrides([f"dataset.path={path}"])
    return grid


@pytest.fixture(autouse=True)
def _quiet_flower() -> None:
    logging.getLogger("flwr").setLevel(logging.ERROR)


@pytest.mark.usefixtures("server_identity")
def test_a_run_on_per_client_files_fits_over_the_clients_and_learns(tmp_path: Path) -> None:
    paths = write_client_files(tmp_path / "data", clients=3)
    grid = _grid(paths, tmp_path / "states")
    config = compose_config(RUN)
    results = run_server(grid, config, tmp_path / "run")

    assert results["finished"] and results["rounds_completed"] == 3
    assert results["final"]["test_accuracy"] > 0.8  # chance (the majority class) is 0.63
    saved = FittedPipeline.load(tmp_path / "run" / PIPELINE_DIR)

    # The numbers equal those of the same pipeline fitted on the pooled training rows.
    tables = training_tables(paths, seed=config.seed)
    features = config.features
    assert isinstance(features, TabularFeaturesConfig)
    one = pooled(tables)
    centralized = fit_pipeline(
        replace(features, centralized=True),
        Columns(one.numeric, one.categorical, one.task),
        LocalFederation([one]),
        seed=config.seed,
    )
    for name in ("impute", "offset", "scale"):
        np.testing.assert_allclose(getattr(saved, name), getattr(centralized, name), rtol=1e-12, atol=0)
    # The vocabulary is the federated one: the category only client 0 holds is merged into "other".
    federated = fit_pipeline(
        features, Columns(one.numeric, one.categorical, one.task), LocalFederation(tables), seed=config.seed
    )
    assert saved.vocabularies == federated.vocabularies and ONLY_ON_CLIENT_0 not in saved.vocabularies["site"]
    assert ONLY_ON_CLIENT_0 in centralized.vocabularies["site"]
    assert saved.classes == ("0", "1") and saved.fitted_on["clients"] == 3
    assert results["privacy"]["feature_statistics"]["kind"] == "none"

    # Every client holds the very pipeline the run directory has, and its inputs are that pipeline's.
    for node_id, path in zip(grid.node_ids, paths, strict=True):
        kept = FittedPipeline.load(pipeline_dir(grid.contexts[node_id]))
        assert pipeline_digest(kept) == pipeline_digest(saved)
        data = own_dataset(client_config(path), config.seed, kept)
        table = training_tables([path], seed=config.seed)[0]
        np.testing.assert_allclose(data.x_train, centralized_onehot(centralized, saved, table), rtol=1e-6, atol=1e-6)
    sent = {m.metadata.message_type for m in grid.sent}
    assert {keys.TABULAR_SCHEMA, keys.TABULAR_STATISTICS, keys.TABULAR_PIPELINE, "train", "evaluate"} <= sent


def centralized_onehot(centralized: FittedPipeline, saved: FittedPipeline, table: object) -> np.ndarray:
    """The pooled fit's transform, on the federated vocabulary (the one numbers-only difference)."""
    return replace(centralized, vocabularies=saved.vocabularies, categorical_fill=saved.categorical_fill).transform(
        table  # type: ignore[arg-type]
    )


@pytest.mark.usefixtures("server_identity")
def test_dp_statistics_over_per_client_files_report_their_epsilon(tmp_path: Path) -> None:
    paths = write_client_files(tmp_path / "data", clients=3)
    grid = _grid(paths, tmp_path / "states")
    config = compose_config([*RUN, "num_rounds=1", "features=standardize"])
    bounds = {"f0": [0.0, 30.0], "f1": [0.0, 40.0], "f2": [0.0, 200.0], "f3": [0.0, 2600.0]}
    bounds |= {"f4": [0.0, 0.2], "f5": [0.0, 0.4]}
    features = replace(config.features, dp_epsilon=2.0, bounds=bounds)
    results = run_server(grid, replace(config, features=features), tmp_path / "run")
    entry = results["privacy"]["feature_statistics"]
    assert entry["epsilon"] == pytest.approx(2.0, rel=1e-6) and entry["delta"] == 1e-5
    saved = FittedPipeline.load(tmp_path / "run" / PIPELINE_DIR)
    assert saved.fitted_on["dp"]["epsilon"] == pytest.approx(2.0, rel=1e-6)
    exact = fit_pipeline(
        replace(features, dp_epsilon=None),
        Columns(saved.numeric, saved.categorical, "classification"),
        LocalFederation(training_tables(paths, seed=config.seed)),
        seed=config.seed,
    )
    assert not np.array_equal(saved.offset, exact.offset)  # noised, from each client's own entropy
    assert np.isfinite(saved.offset).all() and (saved.scale > 0).all()


@pytest.mark.usefixtures("server_identity")
def test_a_client_whose_columns_differ_is_refused_naming_them(tmp_path: Path) -> None:
    paths = write_client_files(tmp_path / "data", clients=3)
    import pandas as pd

    odd = pd.read_csv(paths[2]).rename(columns={"f4": "smoothness"}).drop(columns=["f5"])
    odd.to_csv(paths[2], index=False)
    grid = _grid(paths, tmp_path / "states")
    with pytest.raises(DataError, match=r"columns differ .* lacks \['f4', 'f5'\]; has \['smoothness'\]"):
        run_server(grid, compose_config([*RUN, "num_rounds=1"]), tmp_path / "run")
    assert not (tmp_path / "run" / PIPELINE_DIR).exists()


def test_agreed_schema_names_moved_columns_and_unites_the_classes() -> None:
    a = TableSchema(numeric=("x", "y"), categorical=("c",), task="classification", classes=("0", "1"))
    b = TableSchema(numeric=("x", "y"), categorical=("c",), task="classification", classes=("1", "2"))
    assert agreed_schema([(5, a), (9, b)]).classes == ("0", "1", "2")
    moved = TableSchema(numeric=("x",), categorical=("c", "y"), task="classification")
    with pytest.raises(DataError, match=r"node 9's columns differ from node 5's: it types \['y'\] differently"):
        agreed_schema([(5, a), (9, moved)])
    with pytest.raises(DataError, match=r"node 9's target is a regression target"):
        agreed_schema([(5, a), (9, replace(a, task="regression", classes=()))])


def test_the_pipeline_crosses_the_message_api_unchanged(tmp_path: Path) -> None:
    paths = write_client_files(tmp_path / "data", clients=2)
    tables = training_tables(paths, seed=0)
    one = pooled(tables)
    config = compose_config(["dataset=breast_cancer", "features=quantile_bins", "model=logreg"]).features
    assert isinstance(config, TabularFeaturesConfig)
    fitted = fit_pipeline(config, Columns(one.numeric, one.categorical, one.task), LocalFederation(tables), seed=0)
    fitted = replace(fitted, classes=("0", "1"))
    back = pipeline_from(pipeline_content(fitted))
    assert pipeline_digest(back) == pipeline_digest(fitted)
    np.testing.assert_array_equal(back.transform(one), fitted.transform(one))


def test_per_client_tables_are_refused_in_simulation_and_without_a_file(tmp_path: Path) -> None:
    config = compose_config(RUN)
    with pytest.raises(ConfigError, match=r"dataset.per_client=true: each client reads its own file in deployment"):
        fitted_dataset(config.dataset, 0, config.features)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"this client has no table of its own \(dataset.path=None\)"):
        own_dataset(config.dataset, 0, FittedPipeline((), (), np.zeros(0), np.zeros(0), np.ones(0)))
    with pytest.raises(ConfigError, match=r"dataset.target must be the name of the target column"):
        compose_config(["dataset=table", "dataset.per_client=true"])


class LateJoinGrid(InProcessGrid):
    """The last ``late`` nodes connect only once round 1's training was sent (after the fit)."""

    def __init__(self, *args: object, late: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.late = set(self.node_ids[-late:])

    def get_node_ids(self) -> list[int]:
        joined = any(m.metadata.message_type == "train" for m in self.sent)
        return [n for n in self.node_ids if joined or n not in self.late]


@pytest.mark.usefixtures("server_identity")
def test_a_node_joining_late_gets_the_pipeline_and_a_mismatched_one_is_refused_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import pandas as pd

    paths = write_client_files(tmp_path / "data", clients=5)
    odd = pd.read_csv(paths[4]).rename(columns={"f4": "smoothness"})
    odd.to_csv(paths[4], index=False)
    grid = LateJoinGrid(make_client_app(given_config_source(RUN)), num_nodes=5, state_root=tmp_path / "states", late=2)
    for node_id, path in zip(grid.node_ids, paths, strict=True):
        grid.contexts[node_id].node_config[keys.NODE_OVERRIDES] = join_overrides([f"dataset.path={path}"])
    late, mismatched = grid.node_ids[3], grid.node_ids[4]
    with caplog.at_level(logging.WARNING, logger="aureon.features.tabular.deployment"):
        results = run_server(grid, compose_config(RUN), tmp_path / "run")

    assert results["finished"] and results["rounds_completed"] == 3
    saved = FittedPipeline.load(tmp_path / "run" / PIPELINE_DIR)
    assert saved.fitted_on["clients"] == 3  # the late nodes' rows took no part in the fit
    assert pipeline_digest(FittedPipeline.load(pipeline_dir(grid.contexts[late]))) == pipeline_digest(saved)
    late_train = [m for m in grid.sent if m.metadata.message_type == "train" and m.metadata.dst_node_id == late]
    assert len(late_train) == 2  # rounds 2 and 3
    assert not pipeline_dir(grid.contexts[mismatched]).exists()
    asked = [
        m for m in grid.sent if m.metadata.dst_node_id == mismatched and m.metadata.message_type == keys.TABULAR_SCHEMA
    ]
    assert len(asked) == 1  # refused once, not asked again every round
    assert f"node {mismatched} joined late and was not given the feature pipeline" in caplog.text
    assert "has ['smoothness'] that the others do not" in caplog.text
