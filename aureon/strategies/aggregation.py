"""Compose the aggregation wrappers that the config asks for around a Flower strategy.

Order, from the outside in: UpdateValidator (refuse malformed replies) ->
WeightCap (no client weighs more than ``aggregation.max_weight``) ->
NormBounding (scale what passed) -> the strategy. Secure aggregation
replaces them: the server never holds a single update to check or clip, so
the protocol checks each masked message's structure, the clients bound
every value with ``secure_aggregation.clipping_range`` and their weight with
``secure_aggregation.max_weight``, and the server refuses a sum outside
what such inputs can produce.
"""

from __future__ import annotations

from flwr.serverapp.strategy import Strategy

from aureon.config import AggregationConfig, NormBoundConfig, SecureAggregationConfig, ValidationConfig
from aureon.strategies.norm_bounding import NormBounding
from aureon.strategies.update_validator import UpdateValidator
from aureon.strategies.weight_cap import WeightCap
from aureon.tracking.round_log import RoundLog


def wrap_aggregation(
    inner: Strategy,
    *,
    validation: ValidationConfig,
    norm_bound: NormBoundConfig,
    secure_aggregation: SecureAggregationConfig,
    aggregation: AggregationConfig,
    round_log: RoundLog,
    timeout: float | None,
    num_rounds: int | None = None,
    require_epsilon: bool = False,
) -> Strategy:
    """``inner`` inside the wrappers the config asks for (the weight cap always, in plain aggregation).

    ``require_epsilon`` (``privacy.require_client_dp``) keeps UpdateValidator on, as it judges replies.
    """
    if secure_aggregation.enabled:
        # Imported here: aureon.secagg.strategy builds on aureon.strategies (StrategyWrapper),
        # so a module-level import would be circular.
        from aureon.secagg.strategy import SecureAggregation

        return SecureAggregation(
            inner,
            settings=secure_aggregation.settings(),  # type: ignore[attr-defined]
            ledger=round_log,
            timeout=timeout,
            num_rounds=num_rounds,
        )
    strategy = inner
    if norm_bound.max_norm is not None:
        strategy = NormBounding(strategy, max_norm=norm_bound.max_norm, round_log=round_log)
    strategy = WeightCap(strategy, max_weight=aggregation.max_weight, round_log=round_log)
    if validation.enabled or require_epsilon:
        strategy = UpdateValidator(
            strategy,
            round_log=round_log,
            max_update_norm=validation.max_update_norm,
            require_epsilon=require_epsilon,
        )
    return strategy
