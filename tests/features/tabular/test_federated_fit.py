"""Federated statistics equal pooled ones, the federated pipeline transforms like the pooled fit,
rare categories are merged, the saved pipeline reloads in a fresh process, DP noise stays within its scale."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aureon.config.features import (
    GenerateFeaturesConfig,
    ImputeFeaturesConfig,
    MinMaxFeaturesConfig,
    OneHotFeaturesConfig,
    QuantileBinsFeaturesConfig,
    StandardizeFeaturesConfig,
)
from aureon.data.tables import Table, table_from_frame
from aureon.exceptions import ConfigError, DataError
from aureon.features.tabular import privacy
from aureon.features.tabular.categories import OTHER_TOKEN
from aureon.features.tabular.federation import LocalFederation
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.histogram import equal_width_edges
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.statistics import NoiseSpec, StatisticsQuery, answer_query, merge_answers

REPO = Path(__file__).resolve().parents[3]


def _table(rows: int = 300, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(50, 12, rows).round(1),
            "income": rng.lognormal(3, 1, rows),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], rows),
            "y": rng.integers(0, 2, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "age"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "city"] = None
    return table_from_frame(frame, name="t", target="y")


def _clients(table: Table, n: int = 4) -> list[Table]:
    return [table.take(rows) for rows in np.array_split(np.arange(len(table)), n)]


COLUMNS = Columns(("age", "income"), ("city",), "classification")


def test_federated_statistics_equal_the_pooled_ones() -> None:
    table = _table()
    edges = equal_width_edges(np.array([0.0, 0.0]), np.array([100.0, 400.0]), bins=16)
    query = StatisticsQuery(COLUMNS.numeric, COLUMNS.categorical, edges=edges)
    merged = merge_answers([answer_query(t, query) for t in _clients(table)])
    pooled = answer_query(table, query)
    assert merged.summary is not None and pooled.summary is not None
    for field in ("count", "missing", "sum", "sum_squares", "minimum", "maximum"):
        np.testing.assert_allclose(getattr(merged.summary, field), getattr(pooled.summary, field), rtol=1e-12)
    np.testing.assert_array_equal(merged.histograms, pooled.histograms)
    assert merged.categories == pooled.categories
    assert merged.summary.count[0] == table.features["age"].notna().sum()


def test_dp_statistics_stay_within_the_stated_noise_and_spend_the_stated_epsilon() -> None:
    table = _table(rows=2000)
    low, high = np.array([0.0, 0.0]), np.array([100.0, 400.0])
    z = privacy.noise_multiplier(epsilon=2.0, delta=1e-5, releases=5)
    assert privacy.spent_epsilon(multiplier=z, releases=5, delta=1e-5) == pytest.approx(2.0)
    query = StatisticsQuery(COLUMNS.numeric, COLUMNS.categorical, noise=NoiseSpec(z, low, high))
    clients = _clients(table)
    noisy = merge_answers([answer_query(t, query, rng=np.random.default_rng(i)) for i, t in enumerate(clients)])
    exact = merge_answers([answer_query(t, replace(query, noise=None)) for t in clients])
    assert noisy.summary is not None and exact.summary is not None
    count_std = z * np.sqrt(2) * np.sqrt(len(clients))  # sensitivity sqrt(columns), summed over clients
    assert np.all(np.abs(noisy.summary.count - exact.summary.count) < 6 * count_std)
    assert not np.array_equal(noisy.summary.count, exact.summary.count)
    sum_std = z * privacy.sum_sensitivity(low, high) * np.sqrt(len(clients))
    clipped = np.clip(table.features[["age", "income"]].to_numpy(), low, high)
    assert np.all(np.abs(noisy.summary.sum - np.nansum(clipped, axis=0)) < 6 * sum_std)
    np.testing.assert_array_equal(noisy.summary.minimum, low)  # min/max are not released under DP


@pytest.mark.parametrize(
    "config",
    [
        StandardizeFeaturesConfig(min_clients=1, min_count=0),
        MinMaxFeaturesConfig(min_clients=1, min_count=0),
        ImputeFeaturesConfig(impute="mean", min_clients=1, min_count=0),
        OneHotFeaturesConfig(min_clients=1, min_count=0, impute="most_frequent"),
    ],
    ids=lambda c: f"{c.name}-{c.impute}",
)
def test_every_client_transforms_exactly_as_the_pooled_fit(config) -> None:
    table = _table()
    clients = _clients(table)
    federated = fit_pipeline(config, COLUMNS, LocalFederation(clients), seed=0)
    pooled = fit_pipeline(replace(config, centralized=True), COLUMNS, LocalFederation([table]), seed=0)
    for part in clients:
        np.testing.assert_allclose(federated.transform(part), pooled.transform(part), rtol=1e-6, atol=1e-6)
    assert federated.vocabularies == pooled.vocabularies


def test_quantile_bins_match_the_pooled_fit_and_the_true_quantiles_within_a_bin() -> None:
    table = _table(rows=1000)
    config = QuantileBinsFeaturesConfig(bins=4, histogram_bins=512, impute="median")
    federated = fit_pipeline(config, COLUMNS, LocalFederation(_clients(table)), seed=0)
    pooled = fit_pipeline(replace(config, centralized=True), COLUMNS, LocalFederation([table]), seed=0)
    assert federated.edges is not None and pooled.edges is not None
    np.testing.assert_allclose(federated.edges, pooled.edges)
    values = table.features["income"].dropna()
    width = (values.max() - values.min()) / 512
    true = np.quantile(values, [0.25, 0.5, 0.75])
    assert np.all(np.abs(federated.edges[1, 1:4] - true) <= width)
    assert abs(federated.impute[1] - np.median(values)) <= width


def test_a_category_held_by_one_client_only_is_merged_into_other() -> None:
    table = _table()
    clients = _clients(table)
    frame = clients[2].features.copy()
    frame.loc[:, "city"] = frame["city"].where(frame.index % 3 != 0, "monaco")  # only client 2
    clients[2] = replace(clients[2], features=frame)
    config = OneHotFeaturesConfig(min_clients=2, min_count=1)
    pipeline = fit_pipeline(config, COLUMNS, LocalFederation(clients), seed=0)
    assert "monaco" not in pipeline.vocabularies["city"] and "paris" in pipeline.vocabularies["city"]
    out = pipeline.transform(clients[2])
    other = pipeline.output_columns().index(f"city={OTHER_TOKEN}")
    monaco = (clients[2].features["city"] == "monaco").to_numpy()
    assert np.all(out[monaco, other] == 1.0)
    with pytest.raises(ConfigError, match=r"features.max_categories must be >= the 5 categories of column 'city'"):
        fit_pipeline(replace(config, max_categories=2), COLUMNS, LocalFederation(clients), seed=0)


def test_a_client_whose_columns_differ_is_refused_naming_the_columns() -> None:
    table = _table()
    clients = _clients(table)
    odd = clients[1].features.drop(columns=["income"]).assign(salary=1.0)
    clients[1] = table_from_frame(odd.assign(y=clients[1].target), name="t", target="y")
    with pytest.raises(DataError, match=r"it lacks \['income'\]; has \['salary'\] that the others do not"):
        fit_pipeline(StandardizeFeaturesConfig(), COLUMNS, LocalFederation(clients), seed=0)


def test_dp_fit_needs_bounds_for_every_numeric_column() -> None:
    config = StandardizeFeaturesConfig(dp_epsilon=1.0, bounds={"age": [0.0, 100.0]})
    with pytest.raises(ConfigError, match=r"features.bounds must give \[low, high\].*got none for \['income'\]"):
        fit_pipeline(config, COLUMNS, LocalFederation(_clients(_table())), seed=0)
    bounded = replace(config, bounds={"age": [0.0, 100.0], "income": [0.0, 500.0]})
    pipeline = fit_pipeline(bounded, COLUMNS, LocalFederation(_clients(_table())), seed=0)
    assert pipeline.fitted_on["dp"]["epsilon"] == pytest.approx(1.0)


def test_the_saved_pipeline_reloads_in_a_fresh_process_and_transforms_identically(tmp_path: Path) -> None:
    table = _table()
    config = GenerateFeaturesConfig(max_features=5, pair_columns=2, min_clients=1)
    pipeline = fit_pipeline(config, COLUMNS, LocalFederation(_clients(table)), seed=0)
    assert len(pipeline.generated) == 5
    pipeline.save(tmp_path / "pipe")
    table.features.assign(y=table.target).to_parquet(tmp_path / "rows.parquet")
    np.save(tmp_path / "expected.npy", pipeline.transform(table))
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from aureon.data.tables import table_from_frame\n"
        "from aureon.features.tabular.pipeline import FittedPipeline\n"
        "d = sys.argv[1]\n"
        "t = table_from_frame(pd.read_parquet(d + '/rows.parquet'), name='t', target='y')\n"
        "out = FittedPipeline.load(d + '/pipe').transform(t)\n"
        "assert np.array_equal(out, np.load(d + '/expected.npy')), 'differs'\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    scale = tmp_path / "pipe" / "scale.npy"
    scale.write_bytes(scale.read_bytes()[:-8] + np.float64(7.0).tobytes())
    with pytest.raises(DataError, match=r"scale.npy: does not match"):
        FittedPipeline.load(tmp_path / "pipe")


def test_bounds_are_given_on_the_command_line_by_column_name() -> None:
    """Column names are the user's keys: Hydra must take them without a `+` prefix, ints as numbers."""
    from aureon.launch.run_config import compose_config

    base = ["dataset=breast_cancer", "features=standardize", "model=logreg"]
    config = compose_config([*base, "features.bounds={mean_radius: [0, 50], area: [0.5, 2600]}"])
    assert config.features.bounds == {"mean_radius": [0, 50], "area": [0.5, 2600]}  # type: ignore[attr-defined]
    assert compose_config([*base, "features.bounds.age=[0,100]"]).features.bounds == {"age": [0, 100]}  # type: ignore[attr-defined]
    for bad in ("[5, 1]", "[x, 1]", "[0, 1, 2]"):
        with pytest.raises(ConfigError, match=r"features.bounds.a must be \[low, high\], two numbers with low < high"):
            compose_config([*base, f"features.bounds={{a: {bad}}}"])
    with pytest.raises(Exception, match="features.bogus"):  # other keys of the features config stay closed
        compose_config([*base, "features.bogus=1"])
