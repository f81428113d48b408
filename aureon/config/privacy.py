"""``privacy`` group: sample-level differential privacy (DP-SGD with Opacus)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import MISSING

from aureon.config.base import require


@dataclass
class PrivacyConfig:
    """Sample-level differential privacy on each client (or on the pooled data)."""

    name: str = MISSING
    enabled: bool = False


@dataclass
class NoPrivacyConfig(PrivacyConfig):
    name: str = "none"


@dataclass
class DpSgdConfig(PrivacyConfig):
    """DP-SGD with Opacus; the noise is calibrated once for the whole run's steps."""

    name: str = "dp_sgd"
    enabled: bool = True
    target_epsilon: float = 2.0
    target_delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    grad_sample_mode: str = "hooks"
    # Benchmarks only: derive the noise and Poisson sampling from the run seed. The
    # guarantee then does not hold against anyone who knows the seed; deployment refuses it.
    reproducible_noise: bool = False

    def validate(self) -> None:
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
            self.grad_sample_mode in ("hooks", "ghost", "functorch", "ew"),
            "privacy.grad_sample_mode",
            self.grad_sample_mode,
            "one of 'hooks', 'ghost', 'functorch', 'ew'",
        )
