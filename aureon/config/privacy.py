"""``privacy`` group: sample-level differential privacy (DP-SGD with Opacus)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register

GRAD_SAMPLE_MODES = ("auto", "hooks", "ghost", "functorch")


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
