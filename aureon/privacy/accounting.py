"""Privacy accounting for sample-level DP-SGD: calibration, replay and persistence.

Pure functions around Opacus' accountants. The noise multiplier is calibrated
once for every step a client will take over the whole run, and one accountant
per client accumulates those steps across rounds (its history is persisted
between rounds), so the epsilon reported after round r is the composition of
all r rounds, never a fresh start.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache

from opacus.accountants import create_accountant
from opacus.accountants.accountant import IAccountant
from opacus.accountants.utils import get_noise_multiplier

from aureon.config import DpSgdConfig
from aureon.exceptions import PrivacyBudgetExhausted


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
def _calibrate(
    target_epsilon: float, target_delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
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
    sigma = _calibrate(
        config.target_epsilon, config.target_delta, rate, per_round * num_rounds, config.accountant
    )
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


def accountant_from_json(mechanism: str, state: str | None) -> IAccountant:
    """An Opacus accountant carrying the history saved by ``accountant_to_json``."""
    accountant = create_accountant(mechanism)
    if state:
        loaded = json.loads(state)
        loaded["history"] = [tuple(step) for step in loaded["history"]]
        accountant.load_state_dict(loaded)
    return accountant


def accountant_to_json(accountant: IAccountant) -> str:
    """The accountant's full history as JSON (fits a ConfigRecord or a file)."""
    state = accountant.state_dict()
    return json.dumps({"history": [list(step) for step in state["history"]],
                       "mechanism": state["mechanism"]})


def spent_epsilon(accountant: IAccountant, delta: float) -> float:
    """Epsilon spent so far (0 before the first step)."""
    if not accountant.history:
        return 0.0
    return float(accountant.get_epsilon(delta=delta))


def projected_epsilon(accountant: IAccountant, plan: DpPlan) -> float:
    """Epsilon after one more round under ``plan``, without changing ``accountant``."""
    trial = create_accountant(accountant.mechanism())
    trial.load_state_dict(accountant.state_dict())
    trial.history.append((plan.noise_multiplier, plan.sample_rate, plan.steps_per_round))
    return spent_epsilon(trial, plan.target_delta)


def ensure_budget(accountant: IAccountant, plan: DpPlan, *, tolerance: float = 0.02) -> None:
    """Refuse a round that would take a client past its epsilon budget."""
    after = projected_epsilon(accountant, plan)
    if after > plan.target_epsilon * (1.0 + tolerance):
        spent = spent_epsilon(accountant, plan.target_delta)
        raise PrivacyBudgetExhausted(
            f"privacy budget spent: epsilon {spent:.3f} of privacy.target_epsilon="
            f"{plan.target_epsilon} used; another round would reach {after:.3f} "
            f"(delta={plan.target_delta})"
        )
