"""``privacy`` group: sample-level DP (DP-SGD with Opacus) and client-level DP (DP-FedAvg)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register
from aureon.exceptions import ConfigError

GRAD_SAMPLE_MODES = ("auto", "hooks", "ghost", "functorch")
CLIPPING_MODES = ("fixed", "adaptive")
CLIP_LOCATIONS = ("server", "client")


@dataclass
class PrivacyConfig:
    """Sample-level differential privacy on each client (or on the pooled data)."""

    name: str = MISSING
    enabled: bool = False

    def dp_sgd(self) -> DpSgdConfig | None:
        """The DP-SGD settings to train with; None: plain training.

        The one switch every trainer reads, typed, so a new option declares
        for itself whether it trains privately (no isinstance on a subclass).
        """
        return None

    def client_level(self) -> ClientLevelConfig | None:
        """The client-level DP-FedAvg settings the server applies; None: no client-level guarantee."""
        return None


@register("privacy", "none")
@dataclass
class NoPrivacyConfig(PrivacyConfig):
    name: str = "none"

    def validate(self) -> None:
        require(not self.enabled, "privacy.enabled", self.enabled, "false for privacy=none (choose privacy=dp_sgd)")


@register("privacy", "dp_sgd")
@dataclass
class DpSgdConfig(PrivacyConfig):
    """DP-SGD with Opacus; the noise is calibrated once for the whole run's steps."""

    name: str = "dp_sgd"
    enabled: bool = True
    target_epsilon: float = 2.0
    target_delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    # How Opacus bounds each example's gradient: "auto" takes the fastest exact path for the
    # model (ghost clipping when every trainable layer supports it, else hooks).
    grad_sample_mode: str = "auto"
    # Benchmarks only: derive the noise and Poisson sampling from the run seed. The
    # guarantee then does not hold against anyone who knows the seed; deployment refuses it.
    reproducible_noise: bool = False
    # The server aggregates only train replies that report the epsilon their client spent: a
    # plain Flower client without DP-SGD is rejected rather than void the run's guarantee.
    # True keeps the server's update validation on (it is where replies are judged).
    require_client_dp: bool = True

    def dp_sgd(self) -> DpSgdConfig | None:
        return self if self.enabled else None

    def validate(self) -> None:
        require(self.enabled, "privacy.enabled", self.enabled, "true for privacy=dp_sgd (choose privacy=none)")
        require(
            math.isfinite(self.target_epsilon) and self.target_epsilon > 0,
            "privacy.target_epsilon",
            self.target_epsilon,
            "a finite number > 0",
        )
        require(
            0 < self.target_delta < 1,
            "privacy.target_delta",
            self.target_delta,
            "in (0, 1)",
        )
        require(
            self.max_grad_norm > 0,
            "privacy.max_grad_norm",
            self.max_grad_norm,
            "> 0",
        )
        require(
            self.accountant in ("rdp", "prv", "gdp"),
            "privacy.accountant",
            self.accountant,
            "one of 'rdp', 'prv', 'gdp'",
        )
        require(
            self.grad_sample_mode in GRAD_SAMPLE_MODES,
            "privacy.grad_sample_mode",
            self.grad_sample_mode,
            "one of " + ", ".join(repr(mode) for mode in GRAD_SAMPLE_MODES),
        )


def _sample_level_off() -> DpSgdConfig:
    return DpSgdConfig(enabled=False)


@register("privacy", "client_level")
@dataclass
class ClientLevelConfig(PrivacyConfig):
    """DP-FedAvg: each client's update clipped, Gaussian noise on their mean, for the whole run.

    The noise is calibrated once from ``target_epsilon`` over ``num_rounds``
    rounds with client sampling at ``strategy.fraction_train``; Flower's DP
    wrappers clip and add it. ``sample_level`` turns DP-SGD on each client on
    as well: two guarantees, each stated with its own (epsilon, delta).
    """

    name: str = "client_level"
    enabled: bool = True
    target_epsilon: float = 8.0
    target_delta: float = 1e-5
    clipping: str = "fixed"
    clip_on: str = "server"
    # fixed: the bound on each update's L2 norm; adaptive: its starting value.
    clipping_norm: float = 1.0
    # adaptive only (Andrew et al. 2021): the quantile of update norms the bound tracks,
    # its geometric learning rate, and the noise on the clipped count (null: sampled / 20).
    target_quantile: float = 0.5
    clip_norm_lr: float = 0.2
    clipped_count_stddev: float | None = None
    sample_level: DpSgdConfig = field(default_factory=_sample_level_off)

    def dp_sgd(self) -> DpSgdConfig | None:
        return self.sample_level if self.sample_level.enabled else None

    def client_level(self) -> ClientLevelConfig | None:
        return self if self.enabled else None

    def validate(self) -> None:
        require(self.enabled, "privacy.enabled", self.enabled, "true for privacy=client_level (choose privacy=none)")
        require(
            math.isfinite(self.target_epsilon) and self.target_epsilon > 0,
            "privacy.target_epsilon",
            self.target_epsilon,
            "a finite number > 0",
        )
        require(0 < self.target_delta < 1, "privacy.target_delta", self.target_delta, "in (0, 1)")
        require(
            self.clipping in CLIPPING_MODES,
            "privacy.clipping",
            self.clipping,
            "one of " + ", ".join(repr(mode) for mode in CLIPPING_MODES),
        )
        require(
            self.clip_on in CLIP_LOCATIONS,
            "privacy.clip_on",
            self.clip_on,
            "one of " + ", ".join(repr(where) for where in CLIP_LOCATIONS),
        )
        require(self.clipping_norm > 0, "privacy.clipping_norm", self.clipping_norm, "> 0")
        require(0 < self.target_quantile < 1, "privacy.target_quantile", self.target_quantile, "in (0, 1)")
        require(self.clip_norm_lr > 0, "privacy.clip_norm_lr", self.clip_norm_lr, "> 0")
        if self.clipped_count_stddev is not None:
            require(
                self.clipped_count_stddev > 0,
                "privacy.clipped_count_stddev",
                self.clipped_count_stddev,
                "> 0, or null for sampled clients / 20",
            )
        if self.sample_level.enabled:
            try:
                self.sample_level.validate()
            except ConfigError as error:  # its checks name privacy.<key>; here it is privacy.sample_level.<key>
                raise ConfigError(str(error).replace("privacy.", "privacy.sample_level.", 1)) from None
