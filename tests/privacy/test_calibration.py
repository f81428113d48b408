"""Calibration on the fast evaluator, checked by Opacus; Opacus' RDP stored once per machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as opacus_rdp

from aureon.privacy import accounting
from aureon.privacy.accounting import (
    EPSILON_TOLERANCE,
    RDP_ORDERS,
    Calibration,
    rdp_cache_dir,
    rdp_file_name,
    rdp_per_step,
    read_rdp,
    solve_noise_multiplier,
    write_rdp,
)
from aureon.privacy.fast_rdp import sampled_gaussian_rdp

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CountedCalibration(Calibration):
    """A calibration question that records every noise multiplier Opacus is asked about."""

    asked: list[float] = field(default_factory=list, compare=False, hash=False)

    def epsilon(self, noise_multiplier: float) -> float:
        self.asked.append(noise_multiplier)
        return super().epsilon(noise_multiplier)


def opacus_epsilon(sigma: float, question: Calibration) -> float:
    independent = RDPAccountant()
    independent.history = [(sigma, question.sample_rate, question.steps)]
    return float(independent.get_epsilon(delta=question.target_delta, alphas=list(RDP_ORDERS)))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rdp_per_step.cache_clear()
    yield tmp_path / "cache"
    rdp_per_step.cache_clear()


@pytest.mark.parametrize(
    ("epsilon", "delta", "rate", "steps"),
    [
        (2.0, 1e-5, 1 / 24, 192),
        (0.5, 1e-5, 1 / 5, 100),
        (8.0, 1e-5, 1 / 235, 7050),
        (2.0, 1e-5, 1.0, 5),
        (1.0, 1e-6, 1 / 3, 9),
        (4.0, 1e-5, 1e-3, 20_000),
    ],
)
def test_one_opacus_evaluation_lands_in_the_window(epsilon, delta, rate, steps) -> None:
    question = CountedCalibration(
        accountant="rdp", target_epsilon=epsilon, target_delta=delta, sample_rate=rate, steps=steps
    )
    sigma = solve_noise_multiplier(question)
    assert question.asked == [sigma]
    assert epsilon - EPSILON_TOLERANCE <= opacus_epsilon(sigma, question) <= epsilon


@pytest.mark.parametrize(
    "wrong",
    [
        lambda **kwargs: sampled_gaussian_rdp(**kwargs) * 0.7,  # under-reports: the noise found is too low
        lambda **kwargs: sampled_gaussian_rdp(**kwargs) * 1.3,  # over-reports: too much noise
        lambda **kwargs: np.full(len(kwargs["orders"]), np.nan),  # refuses every order
    ],
)
def test_a_wrong_estimate_falls_back_to_the_opacus_search(wrong) -> None:
    question = CountedCalibration(accountant="rdp", target_epsilon=2.0, target_delta=1e-5, sample_rate=0.05, steps=100)
    sigma = solve_noise_multiplier(question, estimate=wrong)
    assert len(question.asked) > 1
    assert sigma == solve_noise_multiplier(question, estimate=None)
    assert 2.0 - EPSILON_TOLERANCE <= opacus_epsilon(sigma, question) <= 2.0


def test_other_accountants_never_use_the_rdp_estimate() -> None:
    def refuse(**kwargs):
        raise AssertionError("the RDP estimate says nothing about the PRV accountant")

    question = Calibration(accountant="prv", target_epsilon=2.0, target_delta=1e-5, sample_rate=0.05, steps=100)
    sigma = solve_noise_multiplier(question, estimate=refuse)
    assert 2.0 - EPSILON_TOLERANCE <= question.epsilon(sigma) <= 2.0


# --- Opacus' per-step RDP, stored once per machine ---------------------------------------------


SIGMA, RATE = 1.1, 1 / 64


def stored_path() -> Path:
    return rdp_cache_dir() / rdp_file_name(SIGMA, RATE)


def opacus_rdp_vector() -> np.ndarray:
    return np.asarray(opacus_rdp.compute_rdp(q=RATE, noise_multiplier=SIGMA, steps=1, orders=list(RDP_ORDERS)))


def test_the_vector_lives_beside_the_calibration_file(private_cache) -> None:
    assert rdp_cache_dir().parent == accounting.cache_path().parent == private_cache / "aureon"
    assert np.array_equal(rdp_per_step(SIGMA, RATE), opacus_rdp_vector())
    assert np.array_equal(read_rdp(stored_path(), noise_multiplier=SIGMA, sample_rate=RATE), opacus_rdp_vector())


def test_a_fresh_process_reads_the_stored_vector_instead_of_computing_it(private_cache) -> None:
    computed = rdp_per_step(SIGMA, RATE)
    assert stored_path().exists()
    # Mark the stored copy (a valid file whose values Opacus would not give): a process that
    # recomputed would print Opacus' vector, one that reads the file prints the marked one.
    write_rdp(stored_path(), computed * 2, noise_multiplier=SIGMA, sample_rate=RATE)
    code = (
        "import json; from aureon.privacy.accounting import rdp_per_step; "
        f"print(json.dumps([float(v) for v in rdp_per_step({SIGMA!r}, {RATE!r})]))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(private_cache)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=True
    )
    assert np.array_equal(np.asarray(json.loads(result.stdout.strip().splitlines()[-1])), computed * 2)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda text: text.replace("0.0", "0.1", 1),  # a value changed, the checksum not
        lambda text: text[: len(text) // 2],  # torn
        lambda text: "",
    ],
)
def test_a_tampered_file_is_ignored_and_recomputed(tamper) -> None:
    rdp_per_step(SIGMA, RATE)
    stored_path().write_text(tamper(stored_path().read_text()))
    assert read_rdp(stored_path(), noise_multiplier=SIGMA, sample_rate=RATE) is None
    rdp_per_step.cache_clear()
    assert np.array_equal(rdp_per_step(SIGMA, RATE), opacus_rdp_vector())
    assert np.array_equal(read_rdp(stored_path(), noise_multiplier=SIGMA, sample_rate=RATE), opacus_rdp_vector())


def test_a_file_for_other_inputs_or_orders_is_not_used(monkeypatch) -> None:
    vector = rdp_per_step(SIGMA, RATE)
    other = rdp_cache_dir() / rdp_file_name(SIGMA, RATE / 2)
    other.write_bytes(stored_path().read_bytes())  # renamed: the key inside no longer matches
    assert read_rdp(other, noise_multiplier=SIGMA, sample_rate=RATE / 2) is None
    assert np.array_equal(read_rdp(stored_path(), noise_multiplier=SIGMA, sample_rate=RATE), vector)
    monkeypatch.setattr(accounting, "RDP_ORDERS", (*RDP_ORDERS, 2048.0))  # a release with other orders
    assert read_rdp(stored_path(), noise_multiplier=SIGMA, sample_rate=RATE) is None


def test_an_unwritable_cache_costs_only_speed(private_cache) -> None:
    private_cache.mkdir(parents=True)
    (private_cache / "aureon").write_text("a file where the folder should be")
    rdp_per_step.cache_clear()
    assert np.array_equal(rdp_per_step(SIGMA, RATE), opacus_rdp_vector())
