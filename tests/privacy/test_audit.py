"""The one-run audit's epsilon lower bound (Steinke, Nasr and Jagielski 2023) and the auditor's guesses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from scipy.stats import binom

from aureon.privacy.audit import (
    audit,
    epsilon_ceiling,
    epsilon_lower_bound,
    guess,
    one_run_p_value,
)

# (m, guesses r, correct v, significance, delta) -> epsilon. Expected values computed with the
# reference algorithm, google-deepmind/jax_privacy auditing.py (_one_run_p_value and
# _epsilon_one_run: brentq to xtol 1e-9), on these fixed inputs.
REFERENCE = [
    (1000, 200, 200, 0.05, 1e-5, 4.166490176704489),
    (1000, 200, 190, 0.05, 1e-5, 2.3936182772587395),
    (1000, 200, 150, 0.05, 1e-5, 0.8199729121700395),
    (1000, 100, 60, 0.05, 1e-5, 0.04954866064459131),
    (1000, 1000, 1000, 0.05, 0.0, 5.809068338546608),
    (1000, 500, 400, 0.05, 1e-5, 1.1979686462746586),
    (100, 20, 20, 0.05, 1e-5, 1.8195970663714174),
    (10000, 1000, 900, 0.05, 1e-6, 2.020645595865434),
    (1000, 200, 200, 0.05, 0.0, 4.193629987170881),
    (1000, 200, 120, 0.05, 1e-5, 0.15787952104334932),
    (1000, 200, 190, 0.01, 1e-3, 0.0),  # the delta term alone exceeds the significance
    (50, 50, 45, 0.1, 1e-2, 1.1632885942295308),
]


@pytest.mark.parametrize(("m", "r", "v", "significance", "delta", "expected"), REFERENCE)
def test_bound_matches_the_reference_implementation(
    m: int, r: int, v: int, significance: float, delta: float, expected: float
) -> None:
    found = epsilon_lower_bound(m=m, guesses=r, correct=v, delta=delta, confidence=1 - significance)
    assert found == pytest.approx(expected, abs=1e-6)
    if expected > 0:  # the bound is where the p-value crosses the significance level
        p = one_run_p_value(m=m, guesses=r, correct=v, epsilon=found, delta=delta)
        assert p <= significance
        assert one_run_p_value(m=m, guesses=r, correct=v, epsilon=found + 1e-5, delta=delta) > significance


def _paper_algorithm_2(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """The p-value as the paper's Algorithm 2 writes it: a loop over i with a running sum of pmf terms."""
    q = math.exp(epsilon) / (1 + math.exp(epsilon))
    beta = float(binom.sf(v - 1, r, q))
    alpha, running = 0.0, 0.0
    for i in range(1, v + 1):
        running += float(binom.pmf(v - i, r, q))
        if running > i * alpha:
            alpha = running / i
    return min(beta + alpha * delta * 2 * m, 1.0)


@settings(max_examples=200, deadline=None)
@given(
    m=st.integers(1, 2000),
    data=st.data(),
    epsilon=st.floats(0, 8),
    delta=st.sampled_from([0.0, 1e-6, 1e-3, 0.1]),
)
def test_p_value_is_the_papers_algorithm(m: int, data: st.DataObject, epsilon: float, delta: float) -> None:
    r = data.draw(st.integers(1, min(m, 400)))
    v = data.draw(st.integers(1, r))
    found = one_run_p_value(m=m, guesses=r, correct=v, epsilon=epsilon, delta=delta)
    assert found == pytest.approx(_paper_algorithm_2(m, r, v, epsilon, delta), rel=1e-9, abs=1e-12)


def test_pure_dp_p_value_is_the_binomial_tail() -> None:
    # delta = 0: Theorem 3.1, P[Binomial(r, e^eps / (1 + e^eps)) >= v].
    p = one_run_p_value(m=500, guesses=100, correct=70, epsilon=0.5, delta=0.0)
    assert p == pytest.approx(float(binom.sf(69, 100, expit(0.5))))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(10, 3000), data=st.data(), delta=st.sampled_from([0.0, 1e-5]))
def test_bound_grows_with_correct_guesses(m: int, data: st.DataObject, delta: float) -> None:
    r = data.draw(st.integers(1, min(m, 500)))
    v = data.draw(st.integers(0, r - 1))
    lower = epsilon_lower_bound(m=m, guesses=r, correct=v, delta=delta)
    higher = epsilon_lower_bound(m=m, guesses=r, correct=v + 1, delta=delta)
    assert higher >= lower - 1e-6


@pytest.mark.parametrize("r", [1, 10, 200, 1000])
def test_no_better_than_chance_bounds_nothing(r: int) -> None:
    for v in range(0, r // 2 + 1, max(1, r // 20)):
        assert epsilon_lower_bound(m=1000, guesses=r, correct=v, delta=1e-5) == 0.0
    assert epsilon_lower_bound(m=1000, guesses=0, correct=0, delta=1e-5) == 0.0


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 5000), data=st.data(), delta=st.sampled_from([0.0, 1e-6, 1e-2]))
def test_bound_never_exceeds_what_the_guesses_permit(m: int, data: st.DataObject, delta: float) -> None:
    r = data.draw(st.integers(1, m))
    v = data.draw(st.integers(0, r))
    found = epsilon_lower_bound(m=m, guesses=r, correct=v, delta=delta)
    assert found <= epsilon_ceiling(guesses=r) + 1e-6 <= epsilon_ceiling(guesses=m) + 1e-6


def test_every_guess_right_reaches_the_ceiling_without_delta() -> None:
    assert epsilon_lower_bound(m=1000, guesses=200, correct=200, delta=0.0) == pytest.approx(
        epsilon_ceiling(guesses=200), abs=1e-6
    )
    # 1,000 canaries, all guessed right, cannot show more than about 5.8 at 95%: a bound far below
    # a reported epsilon of 8 is expected even for a leaky run.
    assert epsilon_ceiling(guesses=1000) == pytest.approx(5.809068338546608)


def test_delta_only_lowers_the_bound() -> None:
    without = epsilon_lower_bound(m=1000, guesses=300, correct=250, delta=0.0)
    with_delta = epsilon_lower_bound(m=1000, guesses=300, correct=250, delta=1e-4)
    assert 0 < with_delta < without


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"m": 0, "guesses": 0, "correct": 0}, "m"),
        ({"m": 10, "guesses": 11, "correct": 0}, "guesses"),
        ({"m": 10, "guesses": 5, "correct": 6}, "correct"),
        ({"m": 10, "guesses": 5, "correct": 3, "delta": 1.0}, "delta"),
        ({"m": 10, "guesses": 5, "correct": 3, "confidence": 1.0}, "confidence"),
    ],
)
def test_bad_counts_name_the_argument(kwargs: dict[str, float], named: str) -> None:
    arguments = {"delta": 1e-5, **kwargs}
    with pytest.raises(ValueError, match=named):
        epsilon_lower_bound(**arguments)  # type: ignore[arg-type]


def test_guesses_take_the_top_and_bottom_scores() -> None:
    scores = np.array([0.9, -2.0, 0.1, 3.0, -0.5, 0.0])
    np.testing.assert_array_equal(guess(scores, k_plus=2, k_minus=1), [1, -1, 0, 1, 0, 0])
    np.testing.assert_array_equal(guess(scores, k_plus=0, k_minus=0), [0] * 6)
    with pytest.raises(ValueError, match="k_plus"):
        guess(scores, k_plus=4, k_minus=3)
    with pytest.raises(ValueError, match="finite"):
        guess(np.array([0.0, np.nan]), k_plus=1, k_minus=0)


def test_audit_counts_correct_guesses_in_both_directions() -> None:
    included = np.array([True, False, True, False, True, False])
    scores = np.array([5.0, -5.0, 4.0, 3.0, -4.0, -3.0])  # "in": 0, 2 right; "out": 1, 4 -> one wrong
    result = audit(scores, included, k_plus=2, k_minus=2, delta=0.0)
    assert (result.guesses, result.correct, result.included, result.canaries) == (4, 3, 3, 6)
    assert result.epsilon_lower_bound == epsilon_lower_bound(m=6, guesses=4, correct=3, delta=0.0)


def test_separable_scores_beat_random_ones() -> None:
    rng = np.random.default_rng(0)
    included = rng.random(1000) < 0.5
    leaky = np.where(included, 1.0, -1.0) + rng.normal(0, 0.3, 1000)
    blind = rng.normal(0, 1, 1000)
    strong = audit(leaky, included, k_plus=100, k_minus=100, delta=1e-5)
    weak = audit(blind, included, k_plus=100, k_minus=100, delta=1e-5)
    assert strong.correct == 200 and strong.epsilon_lower_bound > 4.0
    assert weak.epsilon_lower_bound < 0.5
