"""The fit over Flower's Message API equals the in-process fit; a federated run on breast cancer learns."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aureon.config.features import TabularFeaturesConfig
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.messages import GridFederation
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.prepare import PIPELINE_DIR, fit_for, train_test_tables
from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from tests.inprocess_grid import InProcessGrid


@pytest.mark.usefixtures("server_identity")
def test_the_fit_over_the_message_api_equals_the_in_process_fit() -> None:
    config = compose_config(["dataset=breast_cancer", "features=quantile_bins", "num_clients=3", "model=logreg"])
    features = config.features
    assert isinstance(features, TabularFeaturesConfig)
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=3)
    train, _ = train_test_tables(config.dataset, config.seed)
    columns = Columns(train.numeric, train.categorical, train.task)
    over_grid = fit_pipeline(features, columns, GridFederation(grid, grid.node_ids), seed=config.seed)
    local = fit_for(features, train, config.seed)
    np.testing.assert_allclose(over_grid.edges, local.edges)
    np.testing.assert_allclose(over_grid.impute, local.impute)
    assert {m.metadata.message_type for m in grid.sent} == {"query.tabular_statistics"}


@pytest.mark.integration
@pytest.mark.usefixtures("server_identity")
def test_a_federated_dp_run_on_breast_cancer_reaches_a_sensible_accuracy(tmp_path: Path) -> None:
    config = compose_config(["dataset=breast_cancer", "features=standardize", "model=logreg", "num_clients=5"])
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=config.num_clients)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    results = run_server(grid, config, tmp_path)
    assert results["final"]["test_accuracy"] >= 0.88
    saved = FittedPipeline.load(tmp_path / PIPELINE_DIR)
    train, _ = train_test_tables(config.dataset, config.seed)
    features = config.features
    assert isinstance(features, TabularFeaturesConfig)
    np.testing.assert_array_equal(
        saved.transform(train), fit_for(replace(features), train, config.seed).transform(train)
    )
