"""Noise calibration and the accountants every epsilon figure comes from.

The noise multiplier is calibrated once for every step a client will take
over the whole run; the client's ledger (aureon/privacy/ledger.py) then
composes the rounds actually charged, so the epsilon reported after round r
covers all r rounds, never a fresh start.

Every Renyi-DP figure AUREON computes (the plan, the charge, the ledger, the
floor) uses the same orders, ``RDP_ORDERS``: Opacus' defaults stop at 63,
where small spends are optimal at a larger order (Opacus then warns, and the
bound is looser than it needs to be).

Calibration is a root of epsilon(sigma) = target on a bracket (Brent's
method), remembered per process and in a checksummed file under the user's
cache directory: a new process, or a thousand virtual clients of the same
size, pays one accountant evaluation to re-verify the stored value instead
of a search.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt
from opacus.accountants import RDPAccountant
from opacus.accountants import create_accountant as create_opacus_accountant
from opacus.accountants.analysis import rdp as rdp_analysis
from scipy.optimize import brentq

from aureon.config import DpSgdConfig
from aureon.files import atomic_write_text

# Opacus' orders (1.1 to 10.9 by 0.1, then 12 to 63) extended to 1024: beyond that the
# binomial coefficients of Opacus' integer-order formula overflow a float64.
RDP_ORDERS: tuple[float, ...] = (
    *(float(order) for order in RDPAccountant.DEFAULT_ALPHAS),
    *(float(order) for order in (64, 72, 80, 96, 112, 128, 160, 192, 256, 320, 384, 512, 768, 1024)),
)

EPSILON_TOLERANCE = 0.005  # calibrated epsilon lies in [target - tolerance, target]
CACHE_FILE = "noise-calibration.json"
CACHE_FORMAT = 1
CACHE_LIMIT = 4096  # entries kept (the most recent); one per distinct client size and budget
_CHECKSUM = "sha256"


class Accountant(Protocol):
    """What the ledger needs of an accountant: a history of (sigma, rate, steps) and epsilon."""

    history: list[tuple[float, float, int]]

    def get_epsilon(self, delta: float) -> float: ...


@lru_cache(maxsize=4096)
def rdp_per_step(noise_multiplier: float, sample_rate: float) -> npt.NDArray[np.float64]:
    """Renyi DP of one sampled Gaussian step at every order (composition multiplies by steps)."""
    orders = list(RDP_ORDERS)
    rdp = np.asarray(
        rdp_analysis.compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=orders),
        dtype=np.float64,
    )
    rdp.flags.writeable = False  # shared by every caller through the cache
    return rdp


class WideRdpAccountant:
    """Opacus' RDP accounting over ``RDP_ORDERS``, each step's RDP computed once per (sigma, rate).

    The arithmetic is Opacus' own (``compute_rdp`` and ``get_privacy_spent``);
    only the orders are wider, and a ledger re-read each round does not
    recompute the same per-step figures.
    """

    def __init__(self) -> None:
        self.history: list[tuple[float, float, int]] = []

    def get_epsilon(self, delta: float) -> float:
        if not self.history:
            return 0.0
        rdp = np.zeros(len(RDP_ORDERS))
        for noise_multiplier, sample_rate, steps in self.history:
            rdp += rdp_per_step(float(noise_multiplier), float(sample_rate)) * steps
        epsilon, _ = rdp_analysis.get_privacy_spent(orders=list(RDP_ORDERS), rdp=rdp, delta=delta)
        return float(epsilon)


def create_accountant(mechanism: str) -> Accountant:
    """The accountant named ``mechanism`` ('rdp', 'prv', 'gdp'); RDP over ``RDP_ORDERS``."""
    if mechanism == "rdp":
        return WideRdpAccountant()
    return cast(Accountant, create_opacus_accountant(mechanism=mechanism))


def epsilon_after(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str) -> float:
    """Epsilon at ``delta`` after ``steps`` Poisson-sampled Gaussian steps."""
    composed = create_accountant(accountant)
    composed.history = [(noise_multiplier, sample_rate, steps)]
    return float(composed.get_epsilon(delta=delta))


def sample_rate_for(num_examples: int, batch_size: int) -> float:
    """Poisson sampling rate as Opacus derives it: 1 / (batches per epoch)."""
    return 1.0 / math.ceil(num_examples / batch_size)


def steps_per_round(num_examples: int, batch_size: int, local_epochs: int) -> int:
    """DP-SGD steps one client takes in one round."""
    return local_epochs * math.ceil(num_examples / batch_size)


@dataclass(frozen=True)
class Calibration:
    """One calibration question: the noise for ``steps`` steps to spend ``target_epsilon``."""

    accountant: str
    target_epsilon: float
    target_delta: float
    sample_rate: float
    steps: int
    epsilon_tolerance: float = EPSILON_TOLERANCE

    @property
    def key(self) -> str:
        """The cache key: every input, floats written exactly."""
        return json.dumps(
            [
                self.accountant,
                self.target_epsilon.hex(),
                self.target_delta.hex(),
                self.sample_rate.hex(),
                self.steps,
                self.epsilon_tolerance.hex(),
            ]
        )

    def epsilon(self, noise_multiplier: float) -> float:
        return epsilon_after(
            noise_multiplier=noise_multiplier,
            sample_rate=self.sample_rate,
            steps=self.steps,
            delta=self.target_delta,
            accountant=self.accountant,
        )

    def accepts(self, noise_multiplier: float) -> bool:
        """Whether ``noise_multiplier`` spends the target to within the tolerance, never more."""
        if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
            return False
        spent = self.epsilon(noise_multiplier)
        return self.target_epsilon - self.epsilon_tolerance <= spent <= self.target_epsilon


MAX_NOISE_MULTIPLIER = 1e6
_HUGE = 1e300  # stands for an infinite epsilon, so that the root finder can still compare


class _Calibrated(Exception):
    """Stops the root finder at the first noise multiplier whose epsilon is in the window."""

    def __init__(self, noise_multiplier: float) -> None:
        super().__init__(noise_multiplier)
        self.noise_multiplier = noise_multiplier


def solve_noise_multiplier(calibration: Calibration) -> float:
    """A noise multiplier whose epsilon is in [target - tolerance, target], by Brent's method.

    Epsilon falls as the noise grows, so doubling (or halving) from 1 brackets
    the root of epsilon = target - tolerance / 2; Brent's method then stops at
    the first point inside the window, a few accountant evaluations where a
    bisection to the same tolerance needs a dozen.
    """
    half = calibration.epsilon_tolerance / 2
    aim = calibration.target_epsilon - half

    seen: dict[float, float] = {}  # the root finder re-evaluates the bracket's ends

    def excess(sigma: float) -> float:
        if sigma not in seen:
            spent = calibration.epsilon(sigma)
            if abs(spent - aim) <= half:
                raise _Calibrated(sigma)
            seen[sigma] = (spent if math.isfinite(spent) else _HUGE) - aim
        return seen[sigma]

    try:
        low, high = _bracket(excess)
        brentq(excess, low, high, xtol=1e-12, maxiter=200)
    except _Calibrated as found:
        return found.noise_multiplier
    raise ArithmeticError(
        f"noise calibration did not reach epsilon {calibration.target_epsilon} "
        f"(tolerance {calibration.epsilon_tolerance}) for {calibration}"
    )


def _bracket(excess: Callable[[float], float]) -> tuple[float, float]:
    """(low, high) with excess(low) > 0 >= excess(high)."""
    sigma = 1.0
    if excess(sigma) > 0:
        while True:
            low, sigma = sigma, sigma * 2
            if sigma > MAX_NOISE_MULTIPLIER:
                raise ValueError("the privacy budget is too low: no noise multiplier up to 1e6 meets it")
            if excess(sigma) <= 0:
                return low, sigma
    while True:
        high, sigma = sigma, sigma / 2
        if excess(sigma) > 0:
            return sigma, high


def cache_path() -> Path:
    """$XDG_CACHE_HOME/aureon/, else ~/.cache/aureon/: the calibration file of this user."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aureon" / CACHE_FILE


def _orders_digest() -> str:
    """Changes when RDP_ORDERS does, so that values calibrated under other orders are dropped."""
    return hashlib.sha256(json.dumps([order.hex() for order in RDP_ORDERS]).encode()).hexdigest()[:16]


def _checksum(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def read_cache(path: Path) -> dict[str, float]:
    """The stored calibrations; an absent, damaged or foreign file reads as empty."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.pop(_CHECKSUM, None) != _checksum(document):
            return {}
        if document.get("format") != CACHE_FORMAT or document.get("orders") != _orders_digest():
            return {}
        entries = document.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {str(key): float(value) for key, value in entries.items()}
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return {}


def write_cache(path: Path, entries: dict[str, float]) -> None:
    """Store ``entries`` (the most recent ``CACHE_LIMIT``) atomically, with their checksum."""
    kept = dict(list(entries.items())[-CACHE_LIMIT:])
    document: dict[str, Any] = {"format": CACHE_FORMAT, "orders": _orders_digest(), "entries": kept}
    atomic_write_text(path, json.dumps({**document, _CHECKSUM: _checksum(document)}, indent=1))


def calibrate(calibration: Calibration, *, cache: Path | None = None) -> float:
    """The calibrated noise multiplier, from the cache file when a stored value re-verifies.

    A stored value is used only after one accountant evaluation shows it
    spends the target to within the tolerance; otherwise it is solved again
    and the file rewritten. A cache that cannot be written costs speed only.
    """
    path = cache_path() if cache is None else cache
    stored = read_cache(path).get(calibration.key)
    if stored is not None and calibration.accepts(stored):
        return stored
    sigma = solve_noise_multiplier(calibration)
    entries = read_cache(path)  # re-read: another process may have added its own
    entries.pop(calibration.key, None)
    entries[calibration.key] = sigma
    try:
        write_cache(path, entries)
    except OSError:
        pass
    return sigma


@lru_cache(maxsize=8192)
def _calibrated(calibration: Calibration) -> float:
    # One entry per distinct client size a process serves: a simulation worker serves
    # hundreds of clients every round, and each would otherwise re-read the cache file.
    return calibrate(calibration)


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
    sigma = _calibrated(
        Calibration(
            accountant=config.accountant,
            target_epsilon=float(config.target_epsilon),
            target_delta=float(config.target_delta),
            sample_rate=rate,
            steps=per_round * num_rounds,
        )
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
