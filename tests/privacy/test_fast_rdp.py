"""The numpy RDP evaluator gives Opacus' figures, and refuses what it cannot match."""

from __future__ import annotations

import numpy as np
import pytest
from opacus.accountants.analysis import rdp as opacus_rdp

from aureon.privacy import fast_rdp
from aureon.privacy.accounting import RDP_ORDERS
from aureon.privacy.fast_rdp import sampled_gaussian_rdp

ORDERS = list(RDP_ORDERS)


def opacus(q: float, sigma: float, orders: list[float] = ORDERS) -> np.ndarray:
    return np.asarray(opacus_rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=orders), dtype=np.float64)


@pytest.mark.parametrize("q", [1e-4, 1e-3, 1e-2, 1 / 24, 0.2, 0.5])
@pytest.mark.parametrize("sigma", [0.3, 0.7, 1.5, 4.0, 20.0])
def test_matches_opacus_at_every_order(q: float, sigma: float) -> None:
    # The same terms summed in another order: equal to rounding. Where A_alpha is 1 + 1e-11
    # (tiny q, large sigma) both lose digits to the cancellation, hence the absolute floor.
    ours = sampled_gaussian_rdp(sample_rate=q, noise_multiplier=sigma, orders=ORDERS)
    np.testing.assert_allclose(ours, opacus(q, sigma), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 20.0])
def test_the_cases_opacus_special_cases(sigma: float) -> None:
    assert np.array_equal(
        sampled_gaussian_rdp(sample_rate=1.0, noise_multiplier=sigma, orders=ORDERS), opacus(1.0, sigma)
    )
    assert not sampled_gaussian_rdp(sample_rate=0.0, noise_multiplier=sigma, orders=ORDERS).any()
    no_noise = sampled_gaussian_rdp(sample_rate=0.1, noise_multiplier=0.0, orders=ORDERS)
    assert np.isposinf(no_noise).all() and np.isposinf(opacus(0.1, 0.0)).all()
    with_infinity = sampled_gaussian_rdp(sample_rate=0.1, noise_multiplier=sigma, orders=[2.5, 8.0, float("inf")])
    np.testing.assert_allclose(with_infinity, opacus(0.1, sigma, [2.5, 8.0, float("inf")]), rtol=1e-9)


def test_a_series_that_does_not_end_in_time_is_refused(monkeypatch) -> None:
    # q = 0.5 at sigma 20 needs ~10^4 terms at the fractional orders; integer orders need no cut.
    monkeypatch.setattr(fast_rdp, "MAX_TERMS", 64)
    ours = sampled_gaussian_rdp(sample_rate=0.5, noise_multiplier=20.0, orders=[2.5, 3.0])
    assert np.isnan(ours[0])
    assert ours[1] == pytest.approx(opacus(0.5, 20.0, [3.0])[0], rel=1e-12)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sample_rate": 1.5, "noise_multiplier": 1.0, "orders": ORDERS}, r"sample_rate must be in \[0, 1\], got 1.5"),
        ({"sample_rate": 0.1, "noise_multiplier": -1.0, "orders": ORDERS}, r"noise_multiplier must be >= 0, got -1.0"),
        ({"sample_rate": 0.1, "noise_multiplier": float("nan"), "orders": ORDERS}, r"noise_multiplier must be >= 0"),
        (
            {"sample_rate": 0.1, "noise_multiplier": 1.0, "orders": [1.0, 2.0]},
            r"orders must be .* > 1, got \[1.0, 2.0\]",
        ),
    ],
)
def test_bad_input_names_the_argument(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sampled_gaussian_rdp(**arguments)
