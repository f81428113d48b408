"""SecAgg/SecAgg+ state machines end to end: correctness, dropouts, threshold, privacy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from aureon.exceptions import SecureAggregationError
from aureon.secagg import fixed_point
from tests.secagg.driver import plain_weighted_sum, run_protocol, settings

NODES5 = [11, 22, 33, 44, 55]


def _inputs(nodes: list[int], length: int, seed: int) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    rng = np.random.default_rng(seed)
    updates = {n: rng.uniform(-1.5, 1.5, length) for n in nodes}
    weights = {n: int(rng.integers(1, 1000)) for n in nodes}
    return updates, weights


def _check(result, updates, weights, survivors, config) -> None:
    expected = plain_weighted_sum(updates, weights, survivors, config)
    bound = fixed_point.sum_error_bound(
        count=len(survivors), clipping_range=config.clipping_range, bits=config.quantization_bits
    )
    assert result.contributors == sorted(survivors)
    assert result.sum_error_bound == pytest.approx(bound)
    assert np.max(np.abs(result.weighted_sum - expected)) <= bound * (1 + 1e-9)
    assert result.total_weight == sum(min(weights[n], config.max_weight) for n in survivors)
    total_weight = sum(weights[n] for n in survivors)
    mean = sum(weights[n] * np.clip(updates[n], -2, 2) for n in survivors) / total_weight
    assert np.max(np.abs(result.mean() - mean)) <= result.mean_error_bound() * (1 + 1e-9)


@hsettings(max_examples=20, deadline=None)
@given(
    num_clients=st.integers(min_value=2, max_value=7),
    length=st.integers(min_value=1, max_value=12),
    weights=st.lists(st.integers(min_value=0, max_value=1500), min_size=7, max_size=7),
    values=st.lists(
        st.floats(min_value=-3.0, max_value=3.0, allow_nan=False), min_size=7 * 12, max_size=7 * 12
    ),
    bits=st.sampled_from([8, 16, 24]),
)
def test_secure_sum_equals_plain_sum_within_the_quantization_bound(
    num_clients, length, weights, values, bits
) -> None:
    config = settings(quantization_bits=bits)
    nodes = [1000 + 7 * i for i in range(num_clients)]
    updates = {n: np.array(values[i * 12 : i * 12 + length]) for i, n in enumerate(nodes)}
    weight_of = {n: weights[i] for i, n in enumerate(nodes)}
    weight_of[nodes[0]] = max(weight_of[nodes[0]], 1)  # a round needs some weight
    result, _ = run_protocol(updates, weight_of, config=config)
    expected = plain_weighted_sum(updates, weight_of, nodes, config)
    assert np.max(np.abs(result.weighted_sum - expected)) <= result.sum_error_bound * (1 + 1e-9)
    assert result.total_weight == sum(min(w, config.max_weight) for w in weight_of.values())


@pytest.mark.parametrize("num_clients, num_shares", [(9, 3), (9, 5), (12, 7)])
def test_secagg_plus_sparse_neighbourhoods_sum_correctly(num_clients: int, num_shares: int) -> None:
    config = settings(num_shares=num_shares)
    nodes = list(range(1, num_clients + 1))
    updates, weights = _inputs(nodes, 40, seed=num_shares)
    result, run = run_protocol(updates, weights, config=config)
    _check(result, updates, weights, nodes, config)
    assert all(len(run.server.neighbours[i]) == num_shares - 1 for i in run.server.neighbours)


def test_one_of_five_dropping_after_its_masked_input_is_still_summed() -> None:
    config = settings()
    updates, weights = _inputs(NODES5, 64, seed=1)
    result, _ = run_protocol(updates, weights, config=config, silent_from={33: "unmask"})
    _check(result, updates, weights, NODES5, config)


@pytest.mark.parametrize("stage", ["keys", "shares", "masked"])
def test_two_of_five_dropping_before_the_masked_input_leaves_the_survivors_sum(stage: str) -> None:
    config = settings()
    updates, weights = _inputs(NODES5, 64, seed=2)
    result, _ = run_protocol(updates, weights, config=config, silent_from={22: stage, 55: stage})
    _check(result, updates, weights, [11, 33, 44], config)


def test_dropouts_in_a_secagg_plus_neighbourhood_are_unmasked() -> None:
    # neighbourhoods of 7 with threshold 4 tolerate any 3 dropouts
    config = settings(num_shares=7)
    nodes = list(range(1, 11))
    updates, weights = _inputs(nodes, 30, seed=3)
    silent = {2: "masked", 7: "masked", 9: "unmask"}
    result, _ = run_protocol(updates, weights, config=config, silent_from=silent)
    _check(result, updates, weights, [n for n in nodes if silent.get(n) != "masked"], config)


@pytest.mark.parametrize("stage", ["keys", "shares", "masked"])
def test_below_threshold_the_round_fails_with_a_clear_error(stage: str) -> None:
    updates, weights = _inputs(NODES5, 8, seed=4)
    with pytest.raises(SecureAggregationError, match="below the threshold 3"):
        run_protocol(updates, weights, silent_from={11: stage, 22: stage, 33: stage})


def test_too_few_unmasking_clients_fail_instead_of_returning_a_wrong_sum() -> None:
    updates, weights = _inputs(NODES5, 8, seed=5)
    silent = {11: "unmask", 22: "unmask", 33: "unmask"}
    with pytest.raises(SecureAggregationError, match="needs 3 shares, 2 arrived"):
        run_protocol(updates, weights, silent_from=silent)


def test_the_masked_input_of_a_client_is_uniform_and_independent_of_its_update() -> None:
    """What the server holds for one client looks the same whatever the client's update.

    The test has power: the same statistics flag the unmasked quantized update.
    """
    length = 20_000
    bits = 32
    rng = np.random.default_rng(6)
    raw = np.clip(rng.normal(0.0, 0.5, length), -2, 2)
    updates = {1: raw, 2: rng.uniform(-2, 2, length), 3: rng.uniform(-2, 2, length)}
    weights = {1: 1000, 2: 500, 3: 700}
    _, run = run_protocol(updates, weights, config=settings(modulus_bits=bits))
    masked = run.masked[1][:-1].astype(np.float64)
    unmasked = fixed_point.quantize(raw, clipping_range=2.0, bits=20).astype(np.float64)

    def chi_square_uniform(values: np.ndarray, top: float) -> float:
        counts = np.bincount((values / top * 64).astype(int), minlength=64)
        expected = len(values) / 64
        return float(np.sum((counts - expected) ** 2 / expected))

    # chi-square with 63 degrees of freedom: 125 is the 1e-6 critical value
    assert chi_square_uniform(masked, 2.0**bits) < 125
    assert chi_square_uniform(unmasked, 2.0**20) > 125
    # correlation with the raw values: |r| < 5 / sqrt(n) unless dependent
    assert abs(np.corrcoef(masked, raw)[0, 1]) < 5 / np.sqrt(length)
    assert abs(np.corrcoef(unmasked, raw)[0, 1]) > 0.99

    # the same client with the opposite extreme update: indistinguishable distributions
    extreme = {**updates, 1: np.full(length, 2.0)}
    _, other = run_protocol(extreme, weights, config=settings(modulus_bits=bits))
    a = np.bincount((masked / 2**bits * 32).astype(int), minlength=32)
    b = np.bincount((other.masked[1][:-1] / 2**bits * 32).astype(int), minlength=32)
    pooled = (a + b) / 2
    two_sample = float(np.sum((a - pooled) ** 2 / pooled + (b - pooled) ** 2 / pooled))
    assert two_sample < 90  # chi-square, 31 degrees of freedom: 1e-6 critical value ~ 89


def test_fresh_masks_every_round_hide_the_difference_of_two_updates() -> None:
    updates, weights = _inputs([1, 2, 3], 5000, seed=7)
    _, first = run_protocol(updates, weights, server_round=1)
    _, second = run_protocol(updates, weights, server_round=2)
    difference = (first.masked[1].astype(np.int64) - second.masked[1].astype(np.int64)) % 2**32
    assert abs(np.corrcoef(difference[:-1].astype(np.float64), updates[1])[0, 1]) < 5 / np.sqrt(5000)


def test_a_modulus_above_32_bits_works_with_uint64_inputs() -> None:
    config = settings(modulus_bits=48, quantization_bits=40)
    updates, weights = _inputs(NODES5, 32, seed=8)
    result, run = run_protocol(updates, weights, config=config, silent_from={44: "masked"})
    assert all(m.dtype == np.uint64 for m in run.masked.values())
    _check(result, updates, weights, [11, 22, 33, 55], config)
