"""Noise calibration and accounting agree with an independent Opacus accountant."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from aureon.config import DpSgdConfig
from aureon.exceptions import PrivacyBudgetExhausted
from aureon.privacy import accounting, plan_dp, sample_rate_for, steps_per_round
from aureon.privacy.accounting import (
    CACHE_FILE,
    EPSILON_TOLERANCE,
    RDP_ORDERS,
    Calibration,
    cache_path,
    calibrate,
    create_accountant,
    read_cache,
    solve_noise_multiplier,
    write_cache,
)
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
        DpSgdConfig(target_epsilon=1.0),
        num_examples=500,
        batch_size=50,
        local_epochs=1,
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
        plan_dp(DpSgdConfig(), num_examples=100, batch_size=10, local_epochs=1, num_rounds=1).noise_multiplier
    )


# --- Renyi orders, the root finder and the calibration cache -------------------------------------


def test_the_wide_rdp_accountant_is_opacus_arithmetic_over_the_wider_orders() -> None:
    history = [(1.3, 1 / 24, 100), (0.9, 1 / 50, 7)]
    ours = create_accountant("rdp")
    ours.history = list(history)
    theirs = RDPAccountant()
    theirs.history = list(history)
    assert ours.get_epsilon(delta=1e-5) == theirs.get_epsilon(delta=1e-5, alphas=list(RDP_ORDERS))
    assert set(RDPAccountant.DEFAULT_ALPHAS) < set(RDP_ORDERS)


def test_wider_orders_tighten_a_small_spend_without_opacus_warning(recwarn) -> None:
    # A few steps at large noise: the best order lies past Opacus' largest default (63).
    history = [(8.0, 1 / 24, 24)]
    ours = create_accountant("rdp")
    ours.history = list(history)
    narrow = RDPAccountant()
    narrow.history = list(history)
    with pytest.warns(UserWarning, match="Optimal order is the largest alpha"):
        loose = narrow.get_epsilon(delta=1e-5)
    recwarn.clear()
    tight = ours.get_epsilon(delta=1e-5)
    assert tight < loose
    assert not [w for w in recwarn if "Optimal order" in str(w.message)]


def test_no_optimal_order_warning_in_the_mnist_dp_plan(tmp_path, monkeypatch, recwarn) -> None:
    # conf/experiment/mnist_dp.yaml: 12,000 examples per client, Poisson batches of 512,
    # one local epoch, 8 rounds; calibrated afresh (empty cache), then every round charged.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    accounting._calibrated.cache_clear()
    plan = plan_dp(DpSgdConfig(), num_examples=12_000, batch_size=512, local_epochs=1, num_rounds=8)
    ledger = PrivacyLedger(data="d")
    floor = PrivacyFloor(max_epsilon=10.0, max_delta=1e-5)
    for server_round in range(1, 9):
        ledger = charge(ledger, plan=plan, floor=floor, run="r", server_round=server_round)
    assert 2.0 - EPSILON_TOLERANCE <= ledger.epsilon(delta=1e-5, accountant="rdp") <= 2.0
    assert not [w for w in recwarn if "Optimal order" in str(w.message)]


@pytest.mark.parametrize(
    ("epsilon", "rate", "steps"),
    [(2.0, 1 / 24, 192), (0.5, 1 / 5, 100), (8.0, 1 / 235, 7050), (2.0, 1.0, 5)],
)
def test_the_root_finder_lands_in_the_same_window_as_opacus_bisection(epsilon, rate, steps) -> None:
    question = Calibration(accountant="rdp", target_epsilon=epsilon, target_delta=1e-5, sample_rate=rate, steps=steps)
    sigma = solve_noise_multiplier(question)
    assert epsilon - EPSILON_TOLERANCE <= question.epsilon(sigma) <= epsilon
    bisected = get_noise_multiplier(
        target_epsilon=epsilon,
        target_delta=1e-5,
        sample_rate=rate,
        steps=steps,
        epsilon_tolerance=EPSILON_TOLERANCE,
        alphas=list(RDP_ORDERS),
    )
    assert sigma == pytest.approx(bisected, rel=5e-3)


def test_an_impossible_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="privacy budget is too low"):
        solve_noise_multiplier(
            Calibration(accountant="rdp", target_epsilon=1e-9, target_delta=1e-12, sample_rate=1.0, steps=10**6)
        )


QUESTION = Calibration(accountant="rdp", target_epsilon=2.0, target_delta=1e-5, sample_rate=1 / 20, steps=100)


def test_a_cache_hit_returns_the_stored_sigma_without_solving(tmp_path, monkeypatch) -> None:
    path = tmp_path / "aureon" / CACHE_FILE
    sigma = calibrate(QUESTION, cache=path)
    assert read_cache(path) == {QUESTION.key: sigma}

    def no_search(question: Calibration) -> float:
        raise AssertionError("a verified cache entry must not be solved again")

    monkeypatch.setattr(accounting, "solve_noise_multiplier", no_search)
    assert calibrate(QUESTION, cache=path) == sigma
    # another question misses, whatever the file holds
    other = replace(QUESTION, steps=101)
    with pytest.raises(AssertionError, match="must not be solved"):
        calibrate(other, cache=path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace('"format": 1', '"format": 1 ', 1)[:-7],  # truncated
        lambda text: "\x00\xff not json",
        lambda text: text.replace("1.", "0.", 1),  # a digit flipped: the checksum no longer matches
        lambda text: "",
    ],
)
def test_a_damaged_cache_file_is_ignored_and_rewritten(tmp_path, damage) -> None:
    path = tmp_path / CACHE_FILE
    sigma = calibrate(QUESTION, cache=path)
    path.write_text(damage(path.read_text()))
    assert read_cache(path) == {}
    assert calibrate(QUESTION, cache=path) == sigma
    assert read_cache(path) == {QUESTION.key: sigma}


@pytest.mark.parametrize("stored", [0.3, 50.0, float("nan"), -1.0])
def test_a_well_formed_but_wrong_value_is_not_trusted(tmp_path, stored: float) -> None:
    # 0.3 would overspend epsilon; 50 would drown the model in noise: both re-verify false
    path = tmp_path / CACHE_FILE
    write_cache(path, {QUESTION.key: stored})
    sigma = calibrate(QUESTION, cache=path)
    assert sigma != stored
    assert 2.0 - EPSILON_TOLERANCE <= QUESTION.epsilon(sigma) <= 2.0
    assert read_cache(path)[QUESTION.key] == sigma


def test_the_cache_lives_under_the_users_cache_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path() == tmp_path / "xdg" / "aureon" / CACHE_FILE
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_path() == tmp_path / "home" / ".cache" / "aureon" / CACHE_FILE


def test_an_unwritable_cache_costs_only_speed(tmp_path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    sigma = calibrate(QUESTION, cache=blocked / CACHE_FILE)
    assert 2.0 - EPSILON_TOLERANCE <= QUESTION.epsilon(sigma) <= 2.0
