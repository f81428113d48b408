"""Flower's robust strategies, chosen in config: built right and resistant to one outlier."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.serverapp.strategy import Bulyan, FedMedian, FedTrimmedAvg, Krum, MultiKrum

from aureon import keys
from aureon.exceptions import ConfigError
from aureon.launch.run_config import compose_config
from aureon.strategies import build_strategy
from tests.strategies.replies import as_numpy, reply, weights

ROBUST = [
    (["strategy=krum"], Krum, 5),
    (["strategy=multikrum"], MultiKrum, 5),
    (["strategy=bulyan", "num_clients=7"], Bulyan, 7),
    (["strategy=fedmedian"], FedMedian, 5),
    (["strategy=fedtrimmedavg"], FedTrimmedAvg, 5),
]


@pytest.mark.parametrize("overrides, kind, clients", ROBUST, ids=[o[0] for o, _, _ in ROBUST])
@pytest.mark.usefixtures("server_identity")
def test_each_robust_strategy_is_built_from_config_and_ignores_an_outlier(overrides, kind, clients) -> None:
    config = compose_config(overrides)
    strategy = build_strategy(config.strategy, num_clients=config.num_clients)
    assert type(strategy) is kind
    assert strategy.min_available_nodes == clients
    honest = [reply(i + 1, weights(1.0 + 0.01 * i), {keys.NUM_EXAMPLES: 10}) for i in range(clients - 1)]
    outlier = reply(99, weights(-1000.0), {keys.NUM_EXAMPLES: 10})
    arrays, _ = strategy.aggregate_train(1, [*honest, outlier])
    assert np.all(np.abs(as_numpy(arrays)["w"] - 1.0) < 0.1)


def test_strategy_parameters_reach_flower() -> None:
    config = compose_config(["strategy=multikrum", "strategy.num_nodes_to_select=2", "num_clients=6"])
    strategy = build_strategy(config.strategy, num_clients=6)
    assert (strategy.num_malicious_nodes, strategy.num_nodes_to_select) == (1, 2)
    trimmed_config = compose_config(["strategy=fedtrimmedavg", "strategy.beta=0.3"])
    trimmed = build_strategy(trimmed_config.strategy, num_clients=5)
    assert trimmed.beta == 0.3


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["strategy=bulyan"], "strategy.num_malicious_nodes"),
        (["strategy=krum", "strategy.num_malicious_nodes=2"], "strategy.num_malicious_nodes"),
        (["strategy=multikrum", "strategy.num_nodes_to_select=5"], "strategy.num_nodes_to_select"),
        (["strategy=fedtrimmedavg", "strategy.beta=0.5"], "strategy.beta"),
        (["norm_bound.max_norm=-1"], "norm_bound.max_norm"),
        (["validation.max_update_norm=0"], "validation.max_update_norm"),
        (["validation.enabled=false", "validation.max_update_norm=3"], "validation.max_update_norm"),
        (["faults.byzantine_partitions=[5]"], "faults.byzantine_partitions"),
        (["faults.mode=invert"], "faults.mode"),
    ],
)
def test_impossible_robustness_settings_are_refused_naming_the_key(overrides, key) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_config(overrides)
