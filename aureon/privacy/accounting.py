"""Noise calibration for sample-level DP-SGD.

The noise multiplier is calibrated once for every step a client will take
over the whole run; the client's ledger (aureon/privacy/ledger.py) then
composes the rounds actually charged, so the epsilon reported after round r
covers all r rounds, never a fresh start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from opacus.accountants.utils import get_noise_multiplier

from aureon.config import DpSgdConfig


def sample_rate_for(num_examples: int, batch_size: int) -> float:
    """Poisson sampling rate as Opacus derives it: 1 / (batches per epoch)."""
    return 1.0 / math.ceil(num_examples / batch_size)


def steps_per_round(num_examples: int, batch_size: int, local_epochs: int) -> int:
    """DP-SGD steps one client takes in one round."""
    return local_epochs * math.ceil(num_examples / batch_size)


@dataclass(frozen=True)
class DpPlan:
    """Everything a client needs to run and account DP-SGD for the whole run."""

    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps_per_round: int
    target_epsilon: float
    target_delta: float
    accountant: str
    grad_sample_mode: str


# One entry per distinct client size a process serves: a simulation worker serves
# hundreds of clients, and Opacus' bisection costs 1-3 s for small clients, so an
# evicted entry would be paid again every round.
@lru_cache(maxsize=8192)
def _calibrate(target_epsilon: float, target_delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
            epsilon_tolerance=0.005,
        )
    )


def plan_dp(
    config: DpSgdConfig,
    *,
    num_examples: int,
    batch_size: int,
    local_epochs: int,
    num_rounds: int,
) -> DpPlan:
    """Calibrate the noise once so that ``num_rounds`` rounds spend ``target_epsilon``."""
    rate = sample_rate_for(num_examples, batch_size)
    per_round = steps_per_round(num_examples, batch_size, local_epochs)
    sigma = _calibrate(config.target_epsilon, config.target_delta, rate, per_round * num_rounds, config.accountant)
    return DpPlan(
        noise_multiplier=sigma,
        max_grad_norm=config.max_grad_norm,
        sample_rate=rate,
        steps_per_round=per_round,
        target_epsilon=config.target_epsilon,
        target_delta=config.target_delta,
        accountant=config.accountant,
        grad_sample_mode=config.grad_sample_mode,
    )
