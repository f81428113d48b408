"""A regression target is standardized from federated sums, saved with the pipeline, and its DP is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aureon.config.dataset import DiabetesConfig
from aureon.config.features import StandardizeFeaturesConfig
from aureon.data.tables import Table, table_from_frame
from aureon.exceptions import ConfigError
from aureon.features.tabular.federation import LocalFederation
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.prepare import fitted_dataset, statistics_guarantee, statistics_line


def _table(rows: int = 240, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(5, 2, rows), "b": rng.uniform(0, 10, rows)})
    frame["price"] = 3.0 * frame["a"] - frame["b"] + rng.normal(100, 1, rows)
    return table_from_frame(frame, name="t", target="price", task="regression")


def _columns(table: Table) -> Columns:
    return Columns(table.numeric, table.categorical, table.task, target="price")


def test_the_target_is_standardized_with_the_pooled_mean_and_std() -> None:
    table = _table()
    clients = [table.take(rows) for rows in np.array_split(np.arange(len(table)), 4)]
    pipeline = fit_pipeline(StandardizeFeaturesConfig(clients=4), _columns(table), LocalFederation(clients), seed=0)
    y = table.target.to_numpy()
    assert pipeline.target == pytest.approx((y.mean(), y.std()), rel=1e-10)
    scaled = pipeline.targets(y)
    assert scaled.dtype == np.float32 and abs(scaled.mean()) < 1e-5 and scaled.std() == pytest.approx(1, rel=1e-5)
    np.testing.assert_allclose(pipeline.predictions(scaled), y, rtol=1e-6)


def test_a_classification_pipeline_leaves_labels_alone() -> None:
    table = table_from_frame(pd.DataFrame({"a": [1.0, 2, 3, 4], "y": [0, 1, 0, 1]}), name="c", target="y")
    columns = Columns(table.numeric, table.categorical, table.task, target="y")
    pipeline = fit_pipeline(StandardizeFeaturesConfig(), columns, LocalFederation([table]), seed=0)
    labels = np.array([0, 1, 0, 1])
    assert pipeline.target is None and pipeline.targets(labels) is labels


def test_the_target_scaling_is_saved_and_reloaded(tmp_path: Path) -> None:
    table = _table()
    pipeline = fit_pipeline(StandardizeFeaturesConfig(), _columns(table), LocalFederation([table]), seed=0)
    loaded = FittedPipeline.load(pipeline.save(tmp_path / "p").parent)
    assert loaded.target == pipeline.target
    np.testing.assert_array_equal(loaded.targets(table.target.to_numpy()), pipeline.targets(table.target.to_numpy()))


def test_dp_on_a_regression_target_needs_its_bounds_and_charges_its_releases() -> None:
    table = _table(rows=2000)
    bounds = {"a": [-5.0, 15.0], "b": [0.0, 10.0]}
    config = StandardizeFeaturesConfig(dp_epsilon=4.0, bounds=bounds)
    with pytest.raises(ConfigError, match="regression target 'price'"):
        fit_pipeline(config, _columns(table), LocalFederation([table]), seed=0)
    config = StandardizeFeaturesConfig(dp_epsilon=4.0, bounds={**bounds, "price": [60.0, 140.0]})
    pipeline = fit_pipeline(config, _columns(table), LocalFederation([table]), seed=0)
    assert pipeline.fitted_on["dp"]["epsilon"] == pytest.approx(4.0)  # the target's releases inside the budget
    offset, scale = pipeline.target or (0.0, 0.0)
    y = table.target.to_numpy()
    assert abs(offset - y.mean()) < 2.0 and 0 < scale < 3 * y.std()


def test_the_diabetes_dataset_trains_on_a_standardized_target() -> None:
    pipeline, data = fitted_dataset(DiabetesConfig(), 0, StandardizeFeaturesConfig(clients=3))
    assert data.task == "regression" and data.num_classes == 1 and data.objective().metric == "r2"
    assert data.y_train.dtype == np.float32 and abs(float(data.y_train.mean())) < 0.05
    assert pipeline.target is not None and 100 < pipeline.target[0] < 200


def test_the_statistics_guarantee_states_its_epsilon_and_what_it_protects() -> None:
    plain = statistics_guarantee(DiabetesConfig(), 0, StandardizeFeaturesConfig(clients=3))
    assert plain["kind"] == "none" and "exact aggregates" in plain["released"]
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    bounds = {name: [0.0, 700.0] for name in names} | {"target": [0.0, 400.0]}
    private = StandardizeFeaturesConfig(clients=3, dp_epsilon=1.5, bounds=bounds)
    entry = statistics_guarantee(DiabetesConfig(), 0, private)
    assert entry["epsilon"] == pytest.approx(1.5) and entry["delta"] == private.dp_delta
    assert "each row of each client's training table" in entry["protects"]
    line = statistics_line({"kind": "none", "feature_statistics": entry})
    assert line is not None and "epsilon 1.500" in line and "protects" in line
    assert statistics_line({"kind": "none"}) is None
