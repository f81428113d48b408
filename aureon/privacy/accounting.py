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
method). For the RDP accountant the search runs on a numpy evaluation of the
same RDP (aureon/privacy/fast_rdp.py), and its answer is kept only if Opacus'
epsilon at it lands in the window: one Opacus evaluation per calibration.
The answer is remembered per process and in a checksummed file under the
user's cache directory: a new process, or a thousand virtual clients of the
same size, re-verifies the stored value instead of searching. Opacus' per-step
RDP vectors are themselves stored beside it, one file per (sigma, rate), so
that every process of the machine computes each one once.
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
from aureon.privacy.fast_rdp import sampled_gaussian_rdp

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
RDP_CACHE_DIR = "rdp"
RDP_CACHE_FORMAT = 1


class Accountant(Protocol):
    """What the ledger needs of an accountant: a history of (sigma, rate, steps) and epsilon."""

    history: list[tuple[float, float, int]]

    def get_epsilon(self, delta: float) -> float: ...


@lru_cache(maxsize=4096)
def rdp_per_step(noise_multiplier: float, sample_rate: float) -> npt.NDArray[np.float64]:
    """Renyi DP of one sampled Gaussian step at every order (composition multiplies by steps).

    Opacus' figure, computed once per machine: a process that misses its
    in-memory cache reads the vector another process stored under
    ``rdp_cache_dir()``, and computes (and stores) it only when no intact file
    is there. A cache that cannot be written costs speed only.
    """
    path = rdp_cache_dir() / rdp_file_name(noise_multiplier, sample_rate)
    rdp = read_rdp(path, noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    if rdp is None:
        rdp = np.asarray(
            rdp_analysis.compute_rdp(
                q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(RDP_ORDERS)
            ),
            dtype=np.float64,
        )
        try:
            write_rdp(path, rdp, noise_multiplier=noise_multiplier, sample_rate=sample_rate)
        except OSError:
            pass
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


RdpEvaluator = Callable[..., npt.NDArray[np.float64]]
"""(sample_rate=, noise_multiplier=, orders=) -> RDP of one step at each order, as ``sampled_gaussian_rdp``."""

FAST_WINDOW = 0.25  # the estimate aims at the middle quarter of the window, leaving room for its error


class _EstimateRefused(Exception):
    """The fast evaluator has no figure (NaN) at this noise: calibrate with Opacus alone."""


def solve_noise_multiplier(calibration: Calibration, *, estimate: RdpEvaluator | None = sampled_gaussian_rdp) -> float:
    """A noise multiplier whose Opacus epsilon is in [target - tolerance, target].

    For the RDP accountant the root is found on ``estimate`` (numpy, tens of
    times cheaper than Opacus) and kept only if Opacus' own epsilon at it is
    in the window: one Opacus evaluation instead of a search. Otherwise, or
    for another accountant, or with ``estimate=None``, the search runs on
    Opacus' epsilon.
    """
    if estimate is not None and calibration.accountant == "rdp":
        evaluator = estimate

        def estimated(sigma: float) -> float:
            return _estimated_epsilon(calibration, sigma, evaluator)

        try:
            guess = _search(calibration, estimated, half_window=calibration.epsilon_tolerance * FAST_WINDOW / 2)
        except (_EstimateRefused, ValueError, ArithmeticError):
            guess = None
        if guess is not None and calibration.accepts(guess):
            return guess
    return _search(calibration, calibration.epsilon, half_window=calibration.epsilon_tolerance / 2)


def _estimated_epsilon(calibration: Calibration, noise_multiplier: float, estimate: RdpEvaluator) -> float:
    """Epsilon from ``estimate``'s RDP, converted as Opacus' ``get_privacy_spent`` does (Balle et al. 2020)."""
    per_step = np.asarray(
        estimate(sample_rate=calibration.sample_rate, noise_multiplier=noise_multiplier, orders=RDP_ORDERS),
        dtype=np.float64,
    )
    if per_step.shape != (len(RDP_ORDERS),) or np.isnan(per_step).any():
        raise _EstimateRefused(noise_multiplier)
    orders = np.asarray(RDP_ORDERS)
    epsilons = (
        per_step * calibration.steps
        - (math.log(calibration.target_delta) + np.log(orders)) / (orders - 1)
        + np.log((orders - 1) / orders)
    )
    return float(np.min(epsilons))


def _search(calibration: Calibration, epsilon: Callable[[float], float], *, half_window: float) -> float:
    """Brent's method on ``epsilon(sigma) = target - tolerance / 2``, stopping within ``half_window`` of it.

    Epsilon falls as the noise grows, so doubling (or halving) from 1 brackets
    the root; Brent's method then stops at the first point inside the window,
    a few evaluations where a bisection to the same tolerance needs a dozen.
    """
    aim = calibration.target_epsilon - calibration.epsilon_tolerance / 2

    seen: dict[float, float] = {}  # the root finder re-evaluates the bracket's ends

    def excess(sigma: float) -> float:
        if sigma not in seen:
            spent = epsilon(sigma)
            if abs(spent - aim) <= half_window:
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


def rdp_cache_dir() -> Path:
    """The per-step RDP vectors of this user: a folder beside the calibration file."""
    return cache_path().parent / RDP_CACHE_DIR


def rdp_file_name(noise_multiplier: float, sample_rate: float) -> str:
    """One file per (sigma, rate), both written exactly."""
    return f"{float(noise_multiplier).hex()}_{float(sample_rate).hex()}.json"


def _rdp_document(rdp: npt.NDArray[np.float64], *, noise_multiplier: float, sample_rate: float) -> dict[str, Any]:
    return {
        "format": RDP_CACHE_FORMAT,
        "orders": _orders_digest(),
        "noise_multiplier": float(noise_multiplier).hex(),
        "sample_rate": float(sample_rate).hex(),
        "rdp": [float(value) for value in rdp],
    }


def read_rdp(path: Path, *, noise_multiplier: float, sample_rate: float) -> npt.NDArray[np.float64] | None:
    """The stored RDP vector for (sigma, rate); None for an absent, damaged, foreign or mismatched file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.pop(_CHECKSUM, None) != _checksum(document):
            return None
        values = document.get("rdp")
        if not isinstance(values, list) or len(values) != len(RDP_ORDERS):
            return None
        rdp = np.asarray(values, dtype=np.float64)
        expected = _rdp_document(rdp, noise_multiplier=noise_multiplier, sample_rate=sample_rate)
        return rdp if document == expected else None
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return None


def write_rdp(path: Path, rdp: npt.NDArray[np.float64], *, noise_multiplier: float, sample_rate: float) -> None:
    """Store the RDP vector atomically with its checksum (not fsynced: a lost write is recomputed)."""
    document = _rdp_document(rdp, noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    atomic_write_text(path, json.dumps({**document, _CHECKSUM: _checksum(document)}), durable=False)


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
