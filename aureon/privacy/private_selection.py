"""Private selection (Papernot and Steinke, ICLR 2022): the privacy cost of tuning on private data.

Hyperparameter search that runs a random number K of independent trials and
releases only the best one is itself a DP algorithm whose Renyi DP follows from
each trial's RDP curve ``eps(lam)``:

- K ~ truncated negative binomial (eta > -1, 0 < gamma < 1), Theorem 2:
  ``eps'(lam) = eps(lam) + (1 + eta)(1 - 1/lh) eps(lh) + (1 + eta) log(1/gamma) / lh + log E[K] / (lam - 1)``
  for any ``lh >= 1`` (minimised here over the same orders, and lh = 1);
- K ~ Poisson(mu), Theorem 6: if each trial is (eh, dh)-DP with
  ``exp(eh) <= 1 + 1/(lam - 1)``, ``eps'(lam) = eps(lam) + mu dh + log(mu) / (lam - 1)``.

A trial's curve is the pointwise maximum over its clients' curves (any one
client's data is in one partition) and, for a mixture over hyperparameters,
over the candidates (Renyi divergence is quasi-convex). Only independent
trials are covered: the number K is secret and drawn from local entropy, the
hyperparameters are drawn independently of earlier trials' results.
Everything here is a pure function of numbers; ``aureon.automl.federated`` runs the trials.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from opacus.accountants.analysis import rdp as rdp_analysis

Curve = npt.NDArray[np.float64]
Numbers = Sequence[float] | Curve
_UNIFORM_BITS = 53


@dataclass(frozen=True)
class TruncatedNegativeBinomial:
    """K >= 1 with P(K = k) proportional to C(k + eta - 1, k) (1 - gamma)^k; eta = 0 is the logarithmic law."""

    eta: float
    gamma: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.eta) and self.eta > -1):
            raise ValueError(f"eta must be a finite number > -1, got {self.eta!r}")
        if not 0 < self.gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma!r}")

    def mean(self) -> float:
        """E[K] (the paper's formula; its eta = 0 case is the limit)."""
        eta, gamma = self.eta, self.gamma
        if eta == 0:
            return float((1 / gamma - 1) / math.log(1 / gamma))
        return float(eta * (1 - gamma) / (gamma * (1 - gamma**eta)))

    def pmf_first(self) -> float:
        """P(K = 1)."""
        eta, gamma = self.eta, self.gamma
        if eta == 0:
            return float((1 - gamma) / math.log(1 / gamma))
        return float(eta * gamma**eta * (1 - gamma) / (1 - gamma**eta))

    def ratio(self, k: int) -> float:
        """P(K = k + 1) / P(K = k)."""
        return (k + self.eta) / (k + 1) * (1 - self.gamma)


@dataclass(frozen=True)
class Poisson:
    """K ~ Poisson(mu); K = 0 releases no trial at all."""

    mu: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mu) and self.mu > 0):
            raise ValueError(f"mu must be a finite number > 0, got {self.mu!r}")

    def mean(self) -> float:
        return self.mu


TrialCount = TruncatedNegativeBinomial | Poisson


def secret_uniform() -> float:
    """A uniform number in [0, 1) from the operating system's entropy (the count K must stay secret)."""
    return secrets.randbits(_UNIFORM_BITS) / float(1 << _UNIFORM_BITS)


def draw_num_trials(law: TrialCount, *, uniform: float | None = None) -> int:
    """K by inverse transform of ``uniform`` (default: ``secret_uniform()``, never a known seed).

    The summed probabilities stop short of 1 in floating point, and a term can
    stall at the smallest subnormal instead of reaching 0: the walk ends where a
    further term no longer changes the sum, the end of the law's representable tail.
    """
    u = secret_uniform() if uniform is None else uniform
    if not 0 <= u < 1:
        raise ValueError(f"uniform must be in [0, 1), got {u!r}")
    if isinstance(law, Poisson):
        k, p = 0, math.exp(-law.mu)
        total = p
        while total <= u and total + p * law.mu / (k + 1) != total:
            k += 1
            p *= law.mu / k
            total += p
        return k
    k, p = 1, law.pmf_first()
    total = p
    while total <= u and total + p * law.ratio(k) != total:
        p *= law.ratio(k)
        k += 1
        total += p
    return k


def _orders(orders: Numbers, rdp: Numbers) -> tuple[Curve, Curve]:
    lam = np.asarray(orders, dtype=np.float64)
    eps = np.asarray(rdp, dtype=np.float64)
    if lam.shape != eps.shape or lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"orders and rdp must be 1-D of the same length, got {lam.shape} and {eps.shape}")
    if np.any(lam <= 1):
        raise ValueError("every Renyi order must be > 1")
    if np.any(eps < 0) or np.any(np.isnan(eps)):
        raise ValueError("an RDP curve is >= 0 at every order")
    return lam, eps


def worst_curve(curves: Sequence[Numbers]) -> Curve:
    """The pointwise maximum of several RDP curves on the same orders (the worst client, or trial)."""
    if not curves:
        raise ValueError("at least one RDP curve is needed")
    worst: Curve = np.max(np.asarray(curves, dtype=np.float64), axis=0)
    return worst


def delta_at(orders: Numbers, rdp: Numbers, epsilon: float) -> float:
    """The smallest delta with (epsilon, delta)-DP that the RDP curve implies (the conversion Opacus uses).

    log delta = (lam - 1)(eps(lam) - epsilon) + (lam - 1) log(1 - 1/lam) - log(lam), minimised over lam.
    """
    lam, eps = _orders(orders, rdp)
    log_delta = (lam - 1) * (eps - epsilon) + (lam - 1) * np.log1p(-1 / lam) - np.log(lam)
    return float(min(1.0, math.exp(min(0.0, float(np.min(log_delta))))))


def epsilon_at(orders: Numbers, rdp: Numbers, delta: float) -> float:
    """Epsilon at ``delta`` from an RDP curve, by the accountant's own conversion (Opacus)."""
    lam, eps = _orders(orders, rdp)
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    epsilon, _ = rdp_analysis.get_privacy_spent(orders=lam.tolist(), rdp=eps, delta=delta)
    return float(epsilon)


def tnb_selection_rdp(orders: Numbers, rdp: Numbers, law: TruncatedNegativeBinomial) -> Curve:
    """Theorem 2: the RDP curve of releasing the best of K ~ TNB(eta, gamma) trials of curve ``rdp``."""
    lam, eps = _orders(orders, rdp)
    scale = 1 + law.eta
    log_inv_gamma = math.log(1 / law.gamma)
    # the lh = 1 term, (1 + eta) log(1/gamma), and every order of the curve as lh
    hat = min(scale * log_inv_gamma, float(np.min(scale * (1 - 1 / lam) * eps + scale * log_inv_gamma / lam)))
    out: Curve = eps + hat + math.log(law.mean()) / (lam - 1)
    return out


def poisson_selection_rdp(orders: Numbers, rdp: Numbers, law: Poisson) -> Curve:
    """Theorem 6: the RDP curve of releasing the best of K ~ Poisson(mu) trials of curve ``rdp``."""
    lam, eps = _orders(orders, rdp)
    delta_hat = np.array([delta_at(lam, eps, math.log1p(1 / (order - 1))) for order in lam])
    out: Curve = eps + law.mu * delta_hat + math.log(law.mu) / (lam - 1)
    return out


def selection_rdp(orders: Numbers, rdp: Numbers, law: TrialCount) -> Curve:
    """The released best trial's RDP curve under ``law``."""
    if isinstance(law, Poisson):
        return poisson_selection_rdp(orders, rdp, law)
    return tnb_selection_rdp(orders, rdp, law)


def selection_epsilon(orders: Numbers, rdp: Numbers, law: TrialCount, *, delta: float) -> float:
    """Epsilon at ``delta`` of the released best trial, tuning included."""
    return epsilon_at(orders, selection_rdp(orders, rdp, law), delta)
