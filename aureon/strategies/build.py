"""Turn a strategy config into a Flower strategy (flwr.serverapp.strategy)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flwr.serverapp.strategy import (
    Bulyan,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    MultiKrum,
    Strategy,
)

from aureon import keys
from aureon.config import (
    BulyanConfig,
    FedAdamConfig,
    FedAvgConfig,
    FedMedianConfig,
    FedProxConfig,
    FedTrimmedAvgConfig,
    KrumConfig,
    MultiKrumConfig,
    StrategyConfig,
)
from aureon.exceptions import ConfigError

_BUILDERS: dict[type[StrategyConfig], Callable[[Any, dict[str, Any]], Strategy]] = {
    FedAvgConfig: lambda c, common: FedAvg(**common),
    FedProxConfig: lambda c, common: FedProx(**common, proximal_mu=c.proximal_mu),
    FedAdamConfig: lambda c, common: FedAdam(**common, eta=c.eta, beta_1=c.beta_1, beta_2=c.beta_2, tau=c.tau),
    KrumConfig: lambda c, common: Krum(**common, num_malicious_nodes=c.num_malicious_nodes),
    MultiKrumConfig: lambda c, common: MultiKrum(
        **common,
        num_malicious_nodes=c.num_malicious_nodes,
        num_nodes_to_select=c.num_nodes_to_select,
    ),
    BulyanConfig: lambda c, common: Bulyan(**common, num_malicious_nodes=c.num_malicious_nodes),
    FedMedianConfig: lambda c, common: FedMedian(**common),
    FedTrimmedAvgConfig: lambda c, common: FedTrimmedAvg(**common, beta=c.beta),
}


def build_strategy(config: StrategyConfig, *, num_clients: int) -> Strategy:
    """The Flower strategy for ``config``, waiting for all ``num_clients`` to connect.

    Evaluation happens on the server (held-out test split), so client-side
    evaluation is off.
    """
    builder = _BUILDERS.get(type(config))
    if builder is None:
        raise ConfigError(
            f"strategy={config.name!r} is not a federated strategy; expected one of "
            f"{sorted(c().name for c in _BUILDERS)}"
        )
    common = {
        "fraction_train": config.fraction_train,
        "fraction_evaluate": 0.0,
        "min_train_nodes": max(1, math.ceil(config.fraction_train * num_clients)),
        "min_evaluate_nodes": 0,
        "min_available_nodes": num_clients,
        "weighted_by_key": keys.NUM_EXAMPLES,
        "arrayrecord_key": keys.ARRAYS,
        "configrecord_key": keys.CONFIG,
    }
    return builder(config, common)
