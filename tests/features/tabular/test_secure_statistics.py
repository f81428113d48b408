"""Statistics summed under secure aggregation: the same pipeline as the plain fit, the server holding sums only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from aureon.config.features import GenerateFeaturesConfig, OneHotFeaturesConfig, StandardizeFeaturesConfig
from aureon.data.tables import Table, table_from_frame
from aureon.exceptions import ConfigError, SecureAggregationError
from aureon.features.tabular.federation import LocalFederation
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.histogram import equal_width_edges
from aureon.features.tabular.secure_statistics import SecureQuery, client_vector, error_bounds, secure_statistics
from aureon.features.tabular.secure_sum import QUANTIZATION_BITS
from aureon.features.tabular.statistics import StatisticsQuery, answer_query, category_holders, merge_answers
from aureon.secagg import fixed_point

BOUNDS = {"age": [0.0, 100.0], "income": [0.0, 400.0]}
LOW, HIGH = np.array([0.0, 0.0]), np.array([100.0, 400.0])
COLUMNS = Columns(("age", "income"), ("city",), "classification")
RARE = "marseille"  # held by client 0 only


def _clients(rows: int = 240, n: int = 4, seed: int = 0) -> list[Table]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(50, 12, rows).round(1),
            "income": np.minimum(rng.lognormal(3, 1, rows), 399.0),
            "city": rng.choice(["paris", "lyon", "nice"], rows),
            "y": rng.integers(0, 2, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "age"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "city"] = None
    frame.loc[:9, "city"] = RARE  # the first rows go to client 0
    table = table_from_frame(frame, name="t", target="y")
    return [table.take(rows) for rows in np.array_split(np.arange(rows), n)]


def _config(**overrides: object) -> OneHotFeaturesConfig:
    values: dict[str, object] = dict(clients=4, min_count=1, min_clients=2, bounds=BOUNDS, secure_aggregation=True)
    values.update(overrides)
    return OneHotFeaturesConfig(**values)  # type: ignore[arg-type]


def _secure(federation: LocalFederation, query: StatisticsQuery, threshold: int = 0) -> object:
    return secure_statistics(
        federation, query, low=LOW, high=HIGH, max_rows=1_000_000, threshold=threshold, min_count=1, min_clients=2
    )


def test_the_secure_sum_equals_the_plain_sum_exactly_for_counts_and_within_the_bound_for_sums() -> None:
    clients = _clients()
    edges = equal_width_edges(LOW, HIGH, bins=16)
    query = StatisticsQuery(COLUMNS.numeric, COLUMNS.categorical, edges=edges)
    secure = _secure(LocalFederation(clients), query)
    plain = merge_answers([answer_query(t, query) for t in clients])
    assert secure.summary is not None and plain.summary is not None  # type: ignore[attr-defined]
    s, p = secure.summary, plain.summary  # type: ignore[attr-defined]
    np.testing.assert_array_equal(s.count, p.count)
    np.testing.assert_array_equal(s.missing, p.missing)
    np.testing.assert_array_equal(secure.histograms, plain.histograms)  # type: ignore[attr-defined]
    assert secure.rows == plain.rows and secure.clients == 4  # type: ignore[attr-defined]
    bounds = error_bounds(SecureQuery(query, LOW, HIGH, max_rows=1_000_000, categories={"city": ()}), 4)
    assert np.all(np.abs(s.sum - p.sum) <= bounds["sum"]) and np.all(bounds["sum"] < 1e-3)
    assert np.all(np.abs(s.sum_squares - p.sum_squares) <= bounds["sum_squares"])
    np.testing.assert_array_equal(s.minimum, LOW)  # min/max are the declared bounds, never summed
    # the categories held by two clients or more, with their exact counts and holder counts
    common = {
        k: v
        for k, v in plain.categories["city"].items()
        if category_holders([answer_query(t, query) for t in clients])["city"][k] >= 2
    }
    assert secure.categories["city"] == common  # type: ignore[attr-defined]
    assert RARE not in secure.categories["city"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("strategy", [OneHotFeaturesConfig, StandardizeFeaturesConfig])
def test_the_secure_fit_equals_the_plain_fit(strategy: type[OneHotFeaturesConfig]) -> None:
    config = strategy(clients=4, min_count=1, min_clients=2, bounds=BOUNDS, impute="mean")
    clients = _clients()
    plain = fit_pipeline(config, COLUMNS, LocalFederation(clients), seed=0)
    secure = fit_pipeline(replace(config, secure_aggregation=True), COLUMNS, LocalFederation(clients), seed=0)
    # mean and std from sums within the bound: relative error ~ 2**-QUANTIZATION_BITS x max_rows x bound / value
    np.testing.assert_allclose(secure.offset, plain.offset, rtol=1e-6)
    np.testing.assert_allclose(secure.scale, plain.scale, rtol=1e-6)
    np.testing.assert_allclose(secure.impute, plain.impute, rtol=1e-6)
    assert secure.vocabularies == plain.vocabularies and RARE not in secure.vocabularies["city"]
    assert secure.fitted_on["clients"] == 4 and secure.fitted_on["secure_aggregation"]["threshold"] == 3
    assert secure.fitted_on["secure_aggregation"]["quantization_bits"] == QUANTIZATION_BITS


def test_what_the_server_receives_from_a_client_is_not_its_answer() -> None:
    clients = _clients()
    federation = LocalFederation(clients)
    received: dict[int, np.ndarray] = {}
    federation.secure.observe = lambda node, masked: received.__setitem__(node, masked.astype(np.uint64))
    query = StatisticsQuery(
        COLUMNS.numeric, COLUMNS.categorical, summary=False, edges=equal_width_edges(LOW, HIGH, bins=8)
    )
    _secure(federation, query)
    request = SecureQuery(query, LOW, HIGH, max_rows=1_000_000, categories={})
    levels = [
        fixed_point.quantize(client_vector(t, request), clipping_range=1.0, bits=QUANTIZATION_BITS) for t in clients
    ]
    assert sorted(received) == [1, 2, 3, 4]
    for masked in received.values():
        for own in levels:  # no client's quantized answer shows through in any coordinate group
            assert np.mean(masked[:-1] == own) < 0.05
        assert int(masked[-1]) != 1  # even the weight is masked
    # masked inputs look uniform over the ring: their top bit is set about half the time
    top = np.concatenate([(m >> np.uint64(61)) & np.uint64(1) for m in received.values()])
    assert 0.2 < top.mean() < 0.8


def test_a_category_held_by_one_client_is_merged_into_other() -> None:
    pipeline = fit_pipeline(_config(), COLUMNS, LocalFederation(_clients()), seed=0)
    assert RARE not in pipeline.vocabularies["city"]
    assert {"paris", "lyon", "nice"} <= set(pipeline.vocabularies["city"])
    lone = fit_pipeline(_config(min_clients=1), COLUMNS, LocalFederation(_clients()), seed=0)
    assert RARE in lone.vocabularies["city"]  # min_clients=1 keeps it: the rule, not the protocol, merges it


def test_a_dropout_within_the_threshold_sums_the_survivors_and_below_it_fails() -> None:
    clients = _clients()
    query = StatisticsQuery(COLUMNS.numeric, COLUMNS.categorical)
    federation = LocalFederation(clients)
    federation.secure.drop = {0: "masked"}  # client 0 goes offline before sending its masked input
    secure = _secure(federation, query)
    survivors = merge_answers([answer_query(t, query) for t in clients[1:]])
    assert secure.clients == 3 and secure.rows == survivors.rows  # type: ignore[attr-defined]
    np.testing.assert_array_equal(secure.summary.count, survivors.summary.count)  # type: ignore[attr-defined,union-attr]
    federation = LocalFederation(clients)
    federation.secure.drop = {0: "masked", 1: "masked"}
    with pytest.raises(SecureAggregationError, match="below the threshold 3"):
        _secure(federation, query)


def test_bad_secure_configs_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="features.secure_threshold"):
        _config(secure_threshold=2).validate()  # not a majority of 4
    with pytest.raises(ConfigError, match="features.clients"):
        _config(clients=1).validate()
    with pytest.raises(ConfigError, match="features.secure_max_rows"):
        _config(secure_max_rows=10**14).validate()  # counts would no longer be exact
    with pytest.raises(ConfigError, match="features.secure_aggregation"):
        GenerateFeaturesConfig(clients=4, secure_aggregation=True).validate()
    _config().validate()
    with pytest.raises(ConfigError, match=r"features.bounds .*\['income'\]"):
        fit_pipeline(_config(bounds={"age": [0, 100]}), COLUMNS, LocalFederation(_clients()), seed=0)


@pytest.mark.usefixtures("server_identity")
def test_the_secure_fit_over_the_message_api_equals_the_plain_fit() -> None:
    from aureon.config.features import TabularFeaturesConfig
    from aureon.features.tabular.messages import GridFederation
    from aureon.features.tabular.prepare import fit_for, train_test_tables
    from aureon.federated.apps import make_client_app
    from aureon.launch.run_config import compose_config
    from tests.inprocess_grid import InProcessGrid

    config = compose_config(["dataset=breast_cancer", "features=standardize", "num_clients=3", "model=logreg"])
    features = config.features
    assert isinstance(features, TabularFeaturesConfig)
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=3)
    train, _ = train_test_tables(config.dataset, config.seed)
    values = train.features[list(train.numeric)].to_numpy()
    bounds = {c: [0.0, float(2 * np.nanmax(values[:, j]))] for j, c in enumerate(train.numeric)}
    secure = replace(features, secure_aggregation=True, bounds=bounds)
    columns = Columns(train.numeric, train.categorical, train.task)
    over_grid = fit_pipeline(secure, columns, GridFederation(grid, grid.node_ids), seed=config.seed)
    plain = fit_for(features, train, config.seed)
    np.testing.assert_allclose(over_grid.offset, plain.offset, rtol=1e-6)
    np.testing.assert_allclose(over_grid.scale, plain.scale, rtol=1e-6)
    assert over_grid.fitted_on["clients"] == 3
    sent = {m.metadata.message_type for m in grid.sent}
    assert "query.tabular_statistics" not in sent  # no client answer travels in the clear
    assert {"query.tabular_secure_setup", "query.tabular_secure_masked", "query.tabular_secure_unmask"} <= sent
