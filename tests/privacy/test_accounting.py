"""Noise calibration and accounting agree with an independent Opacus accountant."""

from __future__ import annotations

import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from aureon.config import DpSgdConfig
from aureon.exceptions import PrivacyBudgetExhausted
from aureon.privacy import plan_dp, sample_rate_for, steps_per_round
from aureon.privacy.floor import PrivacyFloor
from aureon.privacy.ledger import PrivacyLedger, charge


def test_sample_rate_and_steps_follow_opacus_batches_per_epoch() -> None:
    assert sample_rate_for(1000, 64) == pytest.approx(1 / 16)
    assert steps_per_round(1000, 64, 3) == 48


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_calibrated_noise_spends_the_target_over_the_whole_run(accountant: str) -> None:
    config = DpSgdConfig(target_epsilon=2.0, target_delta=1e-5, accountant=accountant)
    plan = plan_dp(config, num_examples=1200, batch_size=60, local_epochs=2, num_rounds=5)
    independent = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    independent.history = [(plan.noise_multiplier, 1 / 20, 5 * 40)]
    epsilon = independent.get_epsilon(delta=1e-5)
    assert epsilon <= 2.0 + 1e-6
    assert epsilon == pytest.approx(2.0, abs=0.02)


def test_charged_rounds_accumulate_like_one_opacus_accountant() -> None:
    plan = plan_dp(DpSgdConfig(), num_examples=800, batch_size=32, local_epochs=1, num_rounds=4)
    ledger, epsilons = PrivacyLedger(data="d"), []
    for server_round in (1, 2, 3):
        ledger = charge(ledger, plan=plan, floor=PrivacyFloor(), run="r", server_round=server_round)
        epsilons.append(ledger.epsilon(delta=1e-5, accountant="rdp"))
    assert epsilons[0] < epsilons[1] < epsilons[2]
    reference = RDPAccountant()
    reference.history = [(plan.noise_multiplier, plan.sample_rate, 3 * plan.steps_per_round)]
    assert epsilons[-1] == pytest.approx(reference.get_epsilon(delta=1e-5), rel=1e-9)


def test_budget_is_refused_past_the_planned_rounds() -> None:
    plan = plan_dp(
        DpSgdConfig(target_epsilon=1.0), num_examples=500, batch_size=50, local_epochs=1,
        num_rounds=2,
    )
    ledger = PrivacyLedger(data="d")
    for server_round in (1, 2):
        ledger = charge(ledger, plan=plan, floor=PrivacyFloor(), run="r", server_round=server_round)
    with pytest.raises(PrivacyBudgetExhausted, match=r"privacy.target_epsilon=1.0"):
        charge(ledger, plan=plan, floor=PrivacyFloor(), run="r", server_round=3)


def test_no_steps_means_no_epsilon() -> None:
    assert PrivacyLedger(data="d").epsilon(delta=1e-5, accountant="rdp") == 0.0
    assert math.isfinite(
        plan_dp(DpSgdConfig(), num_examples=100, batch_size=10, local_epochs=1, num_rounds=1)
        .noise_multiplier
    )
