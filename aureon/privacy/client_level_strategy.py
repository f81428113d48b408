"""DP-FedAvg on AUREON's stack: Flower's DP wrapper, a uniform mean under it, the budget around it.

From the outside in: ClientLevelDP (the run's accountant: refuses a round
that would pass the budget, composes each released round, records epsilon
per round) -> AUREON's aggregation wrappers (validation, weight cap) ->
Flower's DP wrapper (clips on the server, or checks the clients' clipping,
and adds the noise) -> UniformMean -> FedAvg.

Flower's wrappers add noise of standard deviation z * C / n to whatever the
strategy under them returns, n being the sampled count: that is the
sensitivity of the mean only if every update weighs 1/n. FedAvg weighs by
the examples a client declares, so UniformMean gives every reply weight 1
and divides by n even when fewer valid replies arrived (a rejected update
counts as a zero update), as DP-FedAvg's fixed-denominator estimator does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)
from flwr.supercore.differential_privacy import compute_adaptive_noise_params

from aureon.config import ClientLevelConfig
from aureon.exceptions import PrivacyBudgetExhausted
from aureon.privacy.client_level import ClientLevelAccountant, ClientLevelPlan, count_noise_stddev
from aureon.strategies.wrapper import StrategyWrapper
from aureon.tracking.round_log import RoundLog

LOG = logging.getLogger(__name__)

FlowerDp = (
    DifferentialPrivacyServerSideFixedClipping
    | DifferentialPrivacyClientSideFixedClipping
    | DifferentialPrivacyServerSideAdaptiveClipping
    | DifferentialPrivacyClientSideAdaptiveClipping
)


class UniformMean(StrategyWrapper):
    """Every reply weighs 1 and the mean is over ``num_sampled``, whatever arrived."""

    def __init__(self, inner: Strategy, *, num_sampled: int, weighted_by_key: str) -> None:
        super().__init__(inner)
        self.num_sampled = num_sampled
        self.weighted_by_key = weighted_by_key
        self._sent: dict[int, ArrayRecord] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._sent = {server_round: arrays}
        return self.inner.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid = [_weighing_one(reply, self.weighted_by_key) for reply in replies if not reply.has_error()]
        if len(valid) > self.num_sampled:
            raise ValueError(
                f"round {server_round}: {len(valid)} replies for {self.num_sampled} sampled clients; "
                "the client-level noise is calibrated for the sampled count"
            )
        aggregated, metrics = self.inner.aggregate_train(server_round, valid)
        sent = self._sent.get(server_round)
        if aggregated is None or sent is None or len(valid) == self.num_sampled:
            return aggregated, metrics
        share = len(valid) / self.num_sampled
        rescaled = {
            name: Array(np.asarray(base + share * (mean - base)).astype(mean.dtype, copy=False))
            for name, base, mean in zip(
                aggregated.keys(), sent.to_numpy_ndarrays(), aggregated.to_numpy_ndarrays(), strict=True
            )
        }
        return ArrayRecord(rescaled), metrics


def _weighing_one(reply: Message, key: str) -> Message:
    """``reply`` with ``key`` set to 1 in its MetricRecords (a copy; the reply itself is left alone)."""
    content = RecordDict(dict(reply.content.items()))
    for name, record in reply.content.metric_records.items():
        metrics = MetricRecord(dict(record.items()))
        metrics[key] = 1
        content[name] = metrics
    copy: Message = Message(content=content, metadata=reply.metadata)  # type: ignore[call-overload]
    return copy


def flower_dp_wrapper(
    inner: Strategy, *, config: ClientLevelConfig, plan: ClientLevelPlan, noise_multiplier: float | None = None
) -> FlowerDp:
    """Flower's DP wrapper for ``config.clipping`` on ``config.clip_on``, at the plan's noise."""
    sigma = plan.noise_multiplier if noise_multiplier is None else noise_multiplier
    if config.clipping == "fixed":
        fixed = (
            DifferentialPrivacyServerSideFixedClipping
            if config.clip_on == "server"
            else DifferentialPrivacyClientSideFixedClipping
        )
        return fixed(inner, sigma, config.clipping_norm, plan.num_sampled)
    adaptive = (
        DifferentialPrivacyServerSideAdaptiveClipping
        if config.clip_on == "server"
        else DifferentialPrivacyClientSideAdaptiveClipping
    )
    return adaptive(
        inner,
        sigma,
        plan.num_sampled,
        initial_clipping_norm=config.clipping_norm,
        target_clipped_quantile=config.target_quantile,
        clip_norm_lr=config.clip_norm_lr,
        clipped_count_stddev=count_noise_stddev(config, plan.num_sampled),
    )


class ClientLevelDP(StrategyWrapper):
    """The run's client-level budget: checked before each round, composed after each release."""

    def __init__(
        self,
        inner: Strategy,
        *,
        dp: FlowerDp,
        config: ClientLevelConfig,
        plan: ClientLevelPlan,
        round_log: RoundLog,
    ) -> None:
        super().__init__(inner)
        self.dp = dp
        self.config = config
        self.plan = plan
        self.noise_multiplier = plan.noise_multiplier
        self.round_log = round_log
        self.accountant = ClientLevelAccountant(target_epsilon=plan.target_epsilon, target_delta=plan.target_delta)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.accountant.would_exceed(self.noise_multiplier, self.plan.sample_rate):
            after = self.accountant.epsilon_after(self.noise_multiplier, self.plan.sample_rate)
            raise PrivacyBudgetExhausted(
                f"client-level privacy budget: round {server_round} would bring epsilon to {after:.4f}, over "
                f"privacy.target_epsilon={self.plan.target_epsilon:g} (delta {self.plan.target_delta:g}); "
                f"the {len(self.accountant.releases)} rounds released so far spent {self.accountant.epsilon:.4f}. "
                "The run stops before it; more rounds need a new run with its own budget"
            )
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        if len(messages) > self.plan.num_sampled:
            raise PrivacyBudgetExhausted(
                f"round {server_round} sampled {len(messages)} clients, but the client-level noise is calibrated "
                f"for {self.plan.num_sampled} (strategy.fraction_train x num_clients); the run stops rather "
                "than release a mean with less noise than planned"
            )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        # Error replies were recorded outside; Flower's DP wrappers refuse a round that holds any.
        valid = [reply for reply in replies if not reply.has_error()]
        clipping_norm = float(self.dp.clipping_norm)
        aggregated, metrics = self.inner.aggregate_train(server_round, valid) if valid else (None, None)
        released = aggregated is not None
        epsilon = (
            self.accountant.compose(self.noise_multiplier, self.plan.sample_rate)
            if released
            else self.accountant.epsilon
        )
        self.round_log.client_level(
            server_round,
            {
                "epsilon": epsilon,
                "delta": self.plan.target_delta,
                "released": released,
                "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.plan.sample_rate,
                "sampled": self.plan.num_sampled,
                "replies_aggregated": len(valid) if released else 0,
                "clipping_norm": clipping_norm,
                "next_clipping_norm": float(self.dp.clipping_norm),
            },
        )
        return aggregated, metrics

    def restore_rounds(self, rounds: Sequence[dict[str, Any]]) -> None:
        """Continue after the checkpointed ``rounds``: their releases, noise and clipping norm.

        The noise multiplier stays the one the run released with, even when the
        resumed config plans another (more rounds): the budget then stops it.
        """
        entries = [r["client_level"] for r in rounds if isinstance(r.get("client_level"), dict)]
        if not entries:
            return
        self.accountant.releases = [
            (float(e["noise_multiplier"]), float(e["sample_rate"])) for e in entries if e.get("released")
        ]
        sigma = float(entries[-1]["noise_multiplier"])
        if sigma != self.noise_multiplier:
            LOG.warning(
                "client-level DP: keeping the run's noise multiplier %.6g (the resumed config plans %.6g)",
                sigma,
                self.noise_multiplier,
            )
            self._set_noise(sigma)
        self.dp.clipping_norm = float(entries[-1]["next_clipping_norm"])

    def _set_noise(self, sigma: float) -> None:
        self.noise_multiplier = sigma
        if isinstance(self.dp, DifferentialPrivacyServerSideFixedClipping | DifferentialPrivacyClientSideFixedClipping):
            self.dp.noise_multiplier = sigma
            return
        self.dp.clipped_count_stddev, self.dp.noise_multiplier = compute_adaptive_noise_params(
            sigma, self.plan.num_sampled, count_noise_stddev(self.config, self.plan.num_sampled)
        )
