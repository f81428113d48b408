"""The server's whole strategy stack for a config, written once for the server and its tests.

From the outside in: RoundRecorder (bytes, metrics and failures per client;
replies in content-digest order) -> CompressedTransport (when anything is
compressed) -> secure aggregation, or UpdateValidator -> WeightCap ->
NormBounding (aureon.strategies.aggregation) -> Flower's strategy. Every
wrapper reports to the run's one RoundLog and reads the weights sent each
round from its one shared copy.

Client-level DP (``privacy.client_level()``) adds, inside the transport,
ClientLevelDP (the run's budget) outside the aggregation wrappers, and
Flower's DP wrapper over UniformMean over Flower's strategy inside them
(aureon/privacy/client_level_strategy.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from flwr.serverapp.strategy import FedAvg, Strategy

from aureon.config import AureonConfig, ClientLevelConfig, DeploymentConfig, sampled_clients
from aureon.exceptions import ConfigError
from aureon.strategies.aggregation import wrap_aggregation
from aureon.strategies.build import build_strategy
from aureon.strategies.compressed_transport import with_compression
from aureon.strategies.round_recorder import RoundRecorder
from aureon.tracking.round_log import RoundLog


@dataclass(frozen=True)
class ServerStrategy:
    """The strategy the round loop drives and the node counts each round waits for."""

    strategy: Strategy
    min_available_nodes: int  # nodes to wait for before sampling
    min_train_nodes: int  # valid replies a round needs to change the model


def build_server_strategy(config: AureonConfig, *, round_log: RoundLog) -> ServerStrategy:
    """Flower's strategy for ``config.strategy`` inside every wrapper ``config`` asks for."""
    inner = build_strategy(config.strategy, num_clients=config.num_clients)
    available, min_train = _apply_node_limits(inner, config.deployment, num_clients=config.num_clients)
    client_level = config.privacy.client_level()
    if client_level is not None:
        return _with_client_level_dp(inner, config, client_level, round_log=round_log, nodes=(available, min_train))
    aggregating = _aggregation_stack(inner, config, round_log=round_log)
    transported = with_compression(aggregating, config.compression, seed=config.seed, round_log=round_log)
    return ServerStrategy(
        strategy=RoundRecorder(transported, round_log=round_log),
        min_available_nodes=available,
        min_train_nodes=min_train,
    )


def _aggregation_stack(inner: Strategy, config: AureonConfig, *, round_log: RoundLog) -> Strategy:
    """Validation or secure aggregation, weight cap and norm bounding around ``inner``, as ``config`` asks."""
    return wrap_aggregation(
        inner,
        validation=config.validation,
        norm_bound=config.norm_bound,
        secure_aggregation=config.secure_aggregation,
        aggregation=config.aggregation,
        round_log=round_log,
        timeout=config.deployment.round_timeout,
        num_rounds=config.num_rounds,
        require_epsilon=(dp := config.privacy.dp_sgd()) is not None and dp.require_client_dp,
    )


def _apply_node_limits(strategy: Strategy, deployment: DeploymentConfig, *, num_clients: int) -> tuple[int, int]:
    """Set ``deployment``'s node counts (null: every client) on Flower's strategy; return them."""
    available = deployment.min_available_nodes or num_clients
    if not isinstance(strategy, FedAvg):
        return available, deployment.min_train_nodes or 1
    strategy.min_available_nodes = available
    if deployment.min_train_nodes is not None:
        strategy.min_train_nodes = deployment.min_train_nodes
    return available, int(strategy.min_train_nodes)


def _with_client_level_dp(
    inner: Strategy,
    config: AureonConfig,
    client_level: ClientLevelConfig,
    *,
    round_log: RoundLog,
    nodes: tuple[int, int],
) -> ServerStrategy:
    """The stack for DP-FedAvg: the noise is calibrated here, once, for the whole run."""
    from aureon.privacy.client_level import plan_client_level
    from aureon.privacy.client_level_strategy import ClientLevelDP, UniformMean, flower_dp_wrapper

    if not isinstance(inner, FedAvg) or type(inner).aggregate_train is not FedAvg.aggregate_train:
        raise ConfigError(
            f"strategy must average the updates as FedAvg does with privacy=client_level, got strategy="
            f"{config.strategy.name} ({type(inner).__name__}): DP-FedAvg's noise is calibrated for a plain mean"
        )
    plan = plan_client_level(
        client_level,
        num_clients=config.num_clients,
        num_sampled=sampled_clients(config),
        num_rounds=config.num_rounds,
    )
    dp = flower_dp_wrapper(
        UniformMean(inner, num_sampled=plan.num_sampled, weighted_by_key=inner.weighted_by_key),
        config=client_level,
        plan=plan,
    )
    aggregating = _aggregation_stack(dp, config, round_log=round_log)
    guarded = ClientLevelDP(aggregating, dp=dp, config=client_level, plan=plan, round_log=round_log)
    transported = with_compression(guarded, config.compression, seed=config.seed, round_log=round_log)
    return ServerStrategy(
        strategy=RoundRecorder(transported, round_log=round_log),
        min_available_nodes=nodes[0],
        min_train_nodes=nodes[1],
    )
