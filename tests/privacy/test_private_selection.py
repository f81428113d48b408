"""Private selection's RDP bounds (Papernot and Steinke 2022), checked on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aureon.privacy.accounting import RDP_ORDERS, epsilon_after
from aureon.privacy.private_selection import (
    Poisson,
    TruncatedNegativeBinomial,
    delta_at,
    draw_num_trials,
    epsilon_at,
    poisson_selection_rdp,
    selection_epsilon,
    tnb_selection_rdp,
    worst_curve,
)

ORDERS = [2.0, 3.0]
CURVE = [0.5, 1.0]  # eps(2) = 0.5, eps(3) = 1.0
LOG2 = math.log(2)


def test_the_truncated_negative_binomial_mean_is_the_papers() -> None:
    assert TruncatedNegativeBinomial(eta=1, gamma=0.5).mean() == pytest.approx(2.0)  # geometric: 1 / gamma
    assert TruncatedNegativeBinomial(eta=0, gamma=0.5).mean() == pytest.approx(1 / LOG2)  # (1/g - 1) / log(1/g)
    assert TruncatedNegativeBinomial(eta=-0.5, gamma=0.25).mean() == pytest.approx(-0.5 * 0.75 / (0.25 * (1 - 2)))


def test_theorem_2_by_hand_for_a_geometric_count() -> None:
    law = TruncatedNegativeBinomial(eta=1, gamma=0.5)  # E[K] = 2
    # lh = 1: 2 log 2 = 1.386; lh = 2: 2 (1/2) 0.5 + 2 log2 / 2 = 1.193; lh = 3: 2 (2/3) 1.0 + 2 log2 / 3 = 1.795
    hat = 0.5 + LOG2
    expected = [0.5 + hat + LOG2 / 1, 1.0 + hat + LOG2 / 2]  # eps(lam) + min + log E[K] / (lam - 1)
    np.testing.assert_allclose(tnb_selection_rdp(ORDERS, CURVE, law), expected)
    np.testing.assert_allclose(expected, [2.386294, 2.539721], atol=1e-6)


def test_theorem_6_by_hand_for_a_poisson_count() -> None:
    law = Poisson(mu=2.0)
    # lam = 2: eh = log 2; delta_hat = min over a of exp((a-1)(eps(a) - eh) + (a-1) log(1 - 1/a) - log a)
    d2 = min(
        math.exp((0.5 - LOG2) + math.log(0.5) - LOG2), math.exp(2 * (1.0 - LOG2) + 2 * math.log(2 / 3) - math.log(3))
    )
    eh3 = math.log(1.5)
    d3 = min(
        math.exp((0.5 - eh3) + math.log(0.5) - LOG2), math.exp(2 * (1.0 - eh3) + 2 * math.log(2 / 3) - math.log(3))
    )
    assert d2 == pytest.approx(0.206090, abs=1e-6) and d3 == pytest.approx(0.274787, abs=1e-6)
    expected = [0.5 + 2 * d2 + LOG2 / 1, 1.0 + 2 * d3 + LOG2 / 2]
    np.testing.assert_allclose(poisson_selection_rdp(ORDERS, CURVE, law), expected)
    np.testing.assert_allclose(expected, [1.605327, 1.896147], atol=1e-6)


def test_delta_and_epsilon_conversions_invert_each_other_on_a_dp_sgd_curve() -> None:
    from opacus.accountants.analysis import rdp as rdp_analysis

    curve = rdp_analysis.compute_rdp(q=0.05, noise_multiplier=1.1, steps=200, orders=list(RDP_ORDERS))
    epsilon = epsilon_at(RDP_ORDERS, curve, 1e-5)
    assert epsilon == pytest.approx(
        epsilon_after(noise_multiplier=1.1, sample_rate=0.05, steps=200, delta=1e-5, accountant="rdp")
    )
    assert delta_at(RDP_ORDERS, curve, epsilon) == pytest.approx(1e-5, rel=1e-6)


@pytest.mark.parametrize("law", [TruncatedNegativeBinomial(eta=1, gamma=0.1), Poisson(mu=10)])
def test_tuning_costs_more_than_one_run_and_more_trials_cost_more(law: TruncatedNegativeBinomial | Poisson) -> None:
    from opacus.accountants.analysis import rdp as rdp_analysis

    curve = rdp_analysis.compute_rdp(q=0.05, noise_multiplier=1.1, steps=200, orders=list(RDP_ORDERS))
    single = epsilon_at(RDP_ORDERS, curve, 1e-5)
    tuned = selection_epsilon(RDP_ORDERS, curve, law, delta=1e-5)
    assert single < tuned < 4 * single  # a few times one run, never K times
    more = TruncatedNegativeBinomial(eta=1, gamma=0.01) if isinstance(law, TruncatedNegativeBinomial) else Poisson(100)
    assert selection_epsilon(RDP_ORDERS, curve, more, delta=1e-5) > tuned


def test_the_number_of_trials_follows_its_law() -> None:
    uniforms = (np.arange(20000) + 0.5) / 20000  # a quadrature of the inverse transform
    geometric = TruncatedNegativeBinomial(eta=1, gamma=0.25)
    counts = [draw_num_trials(geometric, uniform=u) for u in uniforms]
    assert min(counts) == 1 and np.mean(counts) == pytest.approx(geometric.mean(), rel=0.01)
    assert np.mean([c == 1 for c in counts]) == pytest.approx(0.25, abs=1e-3)  # P(K = 1) = gamma
    logarithmic = TruncatedNegativeBinomial(eta=0, gamma=0.2)
    assert np.mean([draw_num_trials(logarithmic, uniform=u) for u in uniforms]) == pytest.approx(
        logarithmic.mean(), rel=0.01
    )
    poisson_counts = [draw_num_trials(Poisson(3.0), uniform=u) for u in uniforms]
    assert np.mean(poisson_counts) == pytest.approx(3.0, rel=0.01) and min(poisson_counts) == 0
    assert all(draw_num_trials(geometric) >= 1 for _ in range(20))  # the secret draw


@pytest.mark.parametrize(
    "law", [TruncatedNegativeBinomial(eta=1, gamma=0.25), TruncatedNegativeBinomial(eta=1, gamma=1 / 12)]
)
def test_a_uniform_beyond_the_summed_probabilities_still_ends_the_draw(law: TruncatedNegativeBinomial) -> None:
    # The pmf summed in floating point stays below 1 - 2**-53 and its terms stall at the smallest
    # subnormal: the draw used to loop forever there. K ends in the law's far tail, P(K > k) < 2**-50.
    top = math.nextafter(1.0, 0.0)
    tail = math.ceil(50 * math.log(2) / -math.log(1 - law.gamma))
    assert tail <= draw_num_trials(law, uniform=top) <= 2 * tail
    assert draw_num_trials(Poisson(4.0), uniform=top) < 60


def test_bad_parameters_and_curves_are_refused() -> None:
    with pytest.raises(ValueError, match=r"eta must be a finite number > -1, got -1"):
        TruncatedNegativeBinomial(eta=-1, gamma=0.5)
    with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\), got 1"):
        TruncatedNegativeBinomial(eta=1, gamma=1)
    with pytest.raises(ValueError, match=r"mu must be a finite number > 0, got 0"):
        Poisson(mu=0)
    with pytest.raises(ValueError, match=r"every Renyi order must be > 1"):
        tnb_selection_rdp([1.0, 2.0], [0.1, 0.2], TruncatedNegativeBinomial(eta=1, gamma=0.5))
    np.testing.assert_array_equal(worst_curve([[0.1, 0.5], [0.2, 0.3]]), [0.2, 0.5])
