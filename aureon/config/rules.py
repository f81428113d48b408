"""Checks that span groups, each asking the options involved (no table of option classes here)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from aureon.config.base import require
from aureon.config.registry import REGISTRY

if TYPE_CHECKING:
    from aureon.config.run import AureonConfig


def sampled_clients(config: AureonConfig) -> int:
    """How many clients a training round samples (as build_strategy configures Flower)."""
    return max(1, math.ceil(config.strategy.fraction_train * config.num_clients))


def check_model_inputs(config: AureonConfig) -> None:
    """Models that expect feature maps get them (every dataset here is grayscale)."""
    features = config.features
    config.model.check_input_maps(features.maps_per_channel(), source=f"features={features.name}")


def _mean_based_strategies() -> list[str]:
    """The federated strategies that need only the sum of the updates (what secure aggregation gives)."""
    defaults = {name: option.schema() for name, option in REGISTRY.options("strategy").items()}
    return [name for name, strategy in defaults.items() if strategy.federated and not strategy.aggregates_per_update]


def check_aggregation(config: AureonConfig) -> None:
    """Rules that span groups: robust strategies, faults, and what secure aggregation excludes."""
    sampled = sampled_clients(config)
    config.strategy.check_sampled(sampled)
    check_client_level(config)
    for partition in config.faults.byzantine_partitions:
        require(
            0 <= partition < config.num_clients,
            "faults.byzantine_partitions",
            config.faults.byzantine_partitions,
            f"partition ids in [0, {config.num_clients})",
        )
    require(
        not (config.faults.byzantine_partitions and config.compression.active),
        "faults.byzantine_partitions",
        config.faults.byzantine_partitions,
        "[] with compression (faults corrupt plain weights, not encoded updates)",
    )
    secure = config.secure_aggregation
    if not secure.enabled:
        return
    only_sums = f"'none' with secure_aggregation={secure.name} (the server sees only sums)"
    require(
        config.strategy.federated,
        "secure_aggregation",
        secure.name,
        "'none' with strategy=centralized: nothing is aggregated",
    )
    require(
        not config.strategy.aggregates_per_update,
        "strategy",
        config.strategy.name,
        f"a mean-based strategy ({', '.join(_mean_based_strategies())}) with secure_aggregation={secure.name}: "
        "robust aggregators need every update in the clear, the server only learns their sum",
    )
    require(
        config.validation.max_update_norm is None,
        "validation.max_update_norm",
        config.validation.max_update_norm,
        f"null with secure_aggregation={secure.name}: the server cannot see one update's norm; "
        "secure_aggregation.clipping_range bounds every value on the clients instead",
    )
    require(
        config.norm_bound.max_norm is None,
        "norm_bound.max_norm",
        config.norm_bound.max_norm,
        f"null with secure_aggregation={secure.name}: the server never holds one update to clip",
    )
    require(
        not config.compression.active,
        "compression",
        config.compression.name,
        f"{only_sums}: masked inputs are uniform residues no codec can shrink, and "
        "secure_aggregation.quantization_bits already sets the upload precision",
    )
    secure_weight = getattr(secure, "max_weight", 0)
    require(
        secure_weight <= config.aggregation.max_weight,
        "secure_aggregation.max_weight",
        secure_weight,
        f"<= aggregation.max_weight ({config.aggregation.max_weight:g}): a client weighs no more "
        "in a secure sum than in a plain one",
    )
    secure.settings().for_round(sampled)  # type: ignore[attr-defined]


def check_client_level(config: AureonConfig) -> None:
    """What client-level DP (DP-FedAvg) needs: a plain mean of updates the server clips or the clients clip.

    Flower's DP wrappers add noise for the sensitivity of a mean of clipped
    updates, each weighing 1/n: any aggregate other than the mean, a server
    that never sees single updates (secure aggregation), or a codec that
    changes an update after its client clipped it breaks that bound.
    """
    client_level = config.privacy.client_level()
    if client_level is None:
        return
    plain = sorted(
        name for name, option in REGISTRY.options("strategy").items() if getattr(option.schema, "plain_mean", False)
    )
    require(
        config.strategy.federated and config.strategy.plain_mean,
        "strategy",
        config.strategy.name,
        f"one of {plain} with privacy=client_level: DP-FedAvg's noise is calibrated for the mean of "
        "clipped updates (robust aggregators, server optimizers and centralized training are not that mean)",
    )
    require(
        not config.secure_aggregation.enabled,
        "secure_aggregation",
        config.secure_aggregation.name,
        "'none' with privacy=client_level: Flower's DP wrappers clip (clip_on=server) or check the clipping "
        "of (clip_on=client) each update in the clear and add the noise to their plain mean",
    )
    require(
        client_level.clip_on == "server" or not config.compression.active,
        "compression",
        config.compression.name,
        "'none' with privacy.clip_on=client: a codec changes the update after the client clipped it, so its "
        "norm is no longer bounded (clip_on=server clips the decoded update instead)",
    )
    sampled = sampled_clients(config)
    min_train = config.deployment.min_train_nodes
    require(
        min_train is None or min_train <= sampled,
        "deployment.min_train_nodes",
        min_train,
        f"null or <= {sampled} (the clients sampled per round) with privacy=client_level: the noise is "
        "calibrated for that many",
    )
