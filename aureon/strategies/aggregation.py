"""Compose the aggregation wrappers that the config asks for around a Flower strategy.

Order, from the outside in: UpdateValidator (refuse malformed replies) ->
NormBounding (scale what passed) -> the strategy. Secure aggregation
replaces both: the server never holds a single update to check or clip, so
the protocol checks each masked message's structure and the clients bound
every value with ``secure_aggregation.clipping_range``.
"""

from __future__ import annotations

from flwr.serverapp.strategy import Strategy

from aureon.config import NormBoundConfig, SecureAggregationConfig, ValidationConfig
from aureon.seeding import derive_seed
from aureon.strategies.ledger import RoundLedger
from aureon.strategies.norm_bounding import NormBounding
from aureon.strategies.secure_aggregation import SecureAggregation
from aureon.strategies.update_validator import UpdateValidator

SECAGG_SEED_STREAM = 0x5EC466  # keeps the protocol's index assignment apart from other seeds


def wrap_aggregation(
    inner: Strategy,
    *,
    validation: ValidationConfig,
    norm_bound: NormBoundConfig,
    secure_aggregation: SecureAggregationConfig,
    ledger: RoundLedger,
    seed: int,
    timeout: float | None,
    num_rounds: int | None = None,
) -> Strategy:
    """``inner`` inside the wrappers enabled in the config (itself when none is)."""
    if secure_aggregation.enabled:
        return SecureAggregation(
            inner,
            settings=secure_aggregation.settings(),
            ledger=ledger,
            seed=derive_seed(seed, SECAGG_SEED_STREAM),
            timeout=timeout,
            num_rounds=num_rounds,
        )
    strategy = inner
    if norm_bound.max_norm is not None:
        strategy = NormBounding(strategy, max_norm=norm_bound.max_norm)
    if validation.enabled:
        strategy = UpdateValidator(
            strategy, ledger=ledger, max_update_norm=validation.max_update_norm
        )
    return strategy
