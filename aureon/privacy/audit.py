"""The empirical epsilon lower bound of a one-run canary audit.

Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training Run"
(NeurIPS 2023): m canaries are each included in training with probability
1/2; after one run the auditor guesses "in" (+1), "out" (-1) or abstains (0)
for each. If the run is (epsilon, delta)-DP, the number of correct guesses
among r guesses is stochastically dominated by Binomial(r, e^eps / (1 + e^eps))
up to a delta term (their Theorem 5.2, computed as in their Algorithm 2), so
observing v correct guesses rules out every epsilon whose p-value is at most
``1 - confidence``. The largest such epsilon is the empirical lower bound.

The guesses must be fixed before the scores are seen (how many "in" and "out"
guesses, ``guess``): picking the count that gives the best bound after looking
at the scores, without correcting for it, overstates the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from scipy.stats import binom

EPSILON_TOLERANCE = 1e-7  # the bound is found by bisection to this width
_EPSILON_CEILING = 1e4  # beyond any bound m < 10**4000 canaries can give


def _check_counts(*, m: int, guesses: int, correct: int) -> None:
    if m < 1:
        raise ValueError(f"m (the number of canaries) must be >= 1, got {m}")
    if not 0 <= guesses <= m:
        raise ValueError(f"guesses must be in [0, m={m}], got {guesses}")
    if not 0 <= correct <= guesses:
        raise ValueError(f"correct must be in [0, guesses={guesses}], got {correct}")


def _check_delta(delta: float) -> None:
    if not (math.isfinite(delta) and 0.0 <= delta < 1.0):
        raise ValueError(f"delta must be in [0, 1), got {delta!r}")


def one_run_p_value(*, m: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """The probability that an (epsilon, delta)-DP run lets ``guesses`` guesses get ``correct`` or more right.

    With ``q = e^eps / (1 + e^eps)`` and ``W ~ Binomial(guesses, q)``:
    ``P[W >= correct] + 2 m delta max_{1 <= i <= correct} P[correct - i <= W < correct] / i``
    (the paper's Algorithm 2); with ``delta = 0`` the first term alone (Theorem 3.1).
    """
    _check_counts(m=m, guesses=guesses, correct=correct)
    _check_delta(delta)
    if not (math.isfinite(epsilon) and epsilon >= 0.0):
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    if correct == 0:
        return 1.0
    q = float(expit(epsilon))
    tail = float(binom.sf(correct - 1, guesses, q))
    if delta == 0.0:
        return tail
    # P[correct - i <= W <= correct - 1] for i = 1..correct: sums of the pmf below ``correct``, nearest first.
    below = binom.pmf(np.arange(correct - 1, -1, -1), guesses, q)
    windows = np.cumsum(below) / np.arange(1, correct + 1)
    return min(1.0, tail + 2.0 * m * delta * float(windows.max()))


def epsilon_lower_bound(*, m: int, guesses: int, correct: int, delta: float, confidence: float = 0.95) -> float:
    """The largest epsilon that ``correct`` right out of ``guesses`` rules out at ``confidence``; 0 if none.

    Found by bisection on p-value(epsilon) = 1 - confidence after bracketing it
    from epsilon = 0 upwards; when the p-value never drops that low (too few
    guesses, or no better than chance) the bound is 0.
    """
    _check_counts(m=m, guesses=guesses, correct=correct)
    _check_delta(delta)
    if not (math.isfinite(confidence) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    significance = 1.0 - confidence

    def rejected(epsilon: float) -> bool:
        return one_run_p_value(m=m, guesses=guesses, correct=correct, epsilon=epsilon, delta=delta) <= significance

    # The p-value at epsilon = 0 with delta = 0 is the least any (epsilon, delta) claim gets
    # (a larger epsilon or delta only raises it): if that one is not rejected, nothing is.
    if one_run_p_value(m=m, guesses=guesses, correct=correct, epsilon=0.0, delta=0.0) > significance:
        return 0.0
    if not rejected(0.0):
        return 0.0
    low, high = 0.0, 1.0
    while rejected(high):
        low, high = high, 2.0 * high
        if high > _EPSILON_CEILING:  # every guess right with a vanishing delta term: cap, never loop
            return low
    while high - low > EPSILON_TOLERANCE:
        middle = 0.5 * (low + high)
        if rejected(middle):
            low = middle
        else:
            high = middle
    return low


def epsilon_ceiling(*, guesses: int, confidence: float = 0.95) -> float:
    """The largest bound ``guesses`` guesses can give, every one right, with delta = 0.

    ``q^r <= 1 - confidence`` at ``q = e^eps / (1 + e^eps)``: no score, however
    separable, gives more; more canaries (and guesses) are the only way up.
    """
    if guesses < 1:
        return 0.0
    q = (1.0 - confidence) ** (1.0 / guesses)
    return max(0.0, math.log(q / (1.0 - q)))  # too few guesses to reject even epsilon = 0: 0


def guess(scores: npt.ArrayLike, *, k_plus: int, k_minus: int) -> npt.NDArray[np.int8]:
    """+1 for the ``k_plus`` highest scores, -1 for the ``k_minus`` lowest, 0 (abstain) for the rest.

    A higher score means "more likely trained on" (for a loss, pass its
    negation). Ties are broken by position, so the same scores give the same guesses.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite; a NaN or infinite canary score cannot be ranked")
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > len(values):
        raise ValueError(
            f"k_plus and k_minus must be >= 0 with k_plus + k_minus <= {len(values)} (the number of canaries), "
            f"got k_plus={k_plus}, k_minus={k_minus}"
        )
    order = np.argsort(-values, kind="stable")  # highest first
    guesses = np.zeros(len(values), dtype=np.int8)
    guesses[order[:k_plus]] = 1
    if k_minus:
        guesses[order[-k_minus:]] = -1
    return guesses


@dataclass(frozen=True)
class AuditResult:
    """What one audit saw and concluded; ``to_json`` is results.json's ``audit`` block."""

    canaries: int
    included: int
    k_plus: int
    k_minus: int
    guesses: int
    correct: int
    confidence: float
    delta: float
    epsilon_lower_bound: float

    def to_json(self) -> dict[str, Any]:
        return {
            "canaries": self.canaries,
            "included": self.included,
            "k_plus": self.k_plus,
            "k_minus": self.k_minus,
            "guesses": self.guesses,
            "correct": self.correct,
            "confidence": self.confidence,
            "delta": self.delta,
            "epsilon_lower_bound": self.epsilon_lower_bound,
        }


def audit(
    scores: npt.ArrayLike,
    included: npt.ArrayLike,
    *,
    k_plus: int,
    k_minus: int,
    delta: float,
    confidence: float = 0.95,
) -> AuditResult:
    """Guess from ``scores`` (higher: more likely in), count against ``included``, bound epsilon."""
    truth = np.asarray(included)
    if truth.dtype != np.bool_:
        raise ValueError(f"included must be a boolean vector (the inclusion coins), got dtype {truth.dtype}")
    guesses = guess(scores, k_plus=k_plus, k_minus=k_minus)
    if truth.shape != guesses.shape:
        raise ValueError(f"included has shape {truth.shape} but there are {len(guesses)} canary scores")
    signs = np.where(truth, 1, -1)
    correct = int(np.sum(guesses * signs > 0))
    made = int(np.count_nonzero(guesses))
    return AuditResult(
        canaries=len(guesses),
        included=int(truth.sum()),
        k_plus=k_plus,
        k_minus=k_minus,
        guesses=made,
        correct=correct,
        confidence=confidence,
        delta=delta,
        epsilon_lower_bound=epsilon_lower_bound(
            m=len(guesses), guesses=made, correct=correct, delta=delta, confidence=confidence
        ),
    )
