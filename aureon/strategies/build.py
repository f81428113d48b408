"""Turn a strategy config into a Flower strategy (flwr.serverapp.strategy).

``build_strategy`` dispatches through the config registry; each function below
is the builder a strategy config names in its ``@register`` line.
"""

from __future__ import annotations

import math
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
from aureon.config import strategy as schemas
from aureon.config.registry import REGISTRY
from aureon.exceptions import ConfigError


def build_strategy(config: schemas.StrategyConfig, *, num_clients: int) -> Strategy:
    """The Flower strategy for ``config``, waiting for all ``num_clients`` to connect.

    Evaluation happens on the server (held-out test split), so client-side
    evaluation is off.
    """
    if not config.federated:
        raise ConfigError(
            f"strategy={config.name!r} is not a federated strategy; expected one of "
            f"{sorted(REGISTRY.buildable('strategy'))}"
        )
    common: dict[str, Any] = {
        "fraction_train": config.fraction_train,
        "fraction_evaluate": 0.0,
        "min_train_nodes": max(1, math.ceil(config.fraction_train * num_clients)),
        "min_evaluate_nodes": 0,
        "min_available_nodes": num_clients,
        "weighted_by_key": keys.NUM_EXAMPLES,
        "arrayrecord_key": keys.ARRAYS,
        "configrecord_key": keys.CONFIG,
    }
    return REGISTRY.build("strategy", config, expect=Strategy, **common)  # type: ignore[type-abstract]


# Builders: the config, then the settings every strategy shares (``common`` above).
def fedavg(config: schemas.FedAvgConfig, **common: Any) -> FedAvg:
    return FedAvg(**common)


def fedprox(config: schemas.FedProxConfig, **common: Any) -> FedProx:
    return FedProx(**common, proximal_mu=config.proximal_mu)


def fedadam(config: schemas.FedAdamConfig, **common: Any) -> FedAdam:
    return FedAdam(**common, eta=config.eta, beta_1=config.beta_1, beta_2=config.beta_2, tau=config.tau)


def krum(config: schemas.KrumConfig, **common: Any) -> Krum:
    return Krum(**common, num_malicious_nodes=config.num_malicious_nodes)


def multikrum(config: schemas.MultiKrumConfig, **common: Any) -> MultiKrum:
    return MultiKrum(
        **common,
        num_malicious_nodes=config.num_malicious_nodes,
        num_nodes_to_select=config.num_nodes_to_select,
    )


def bulyan(config: schemas.BulyanConfig, **common: Any) -> Bulyan:
    return Bulyan(**common, num_malicious_nodes=config.num_malicious_nodes)


def fedmedian(config: schemas.FedMedianConfig, **common: Any) -> FedMedian:
    return FedMedian(**common)


def fedtrimmedavg(config: schemas.FedTrimmedAvgConfig, **common: Any) -> FedTrimmedAvg:
    return FedTrimmedAvg(**common, beta=config.beta)
