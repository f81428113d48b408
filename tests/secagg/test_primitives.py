"""The protocol's building blocks: ring, quantization, Shamir, key agreement, PRG, graph, params."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from aureon.exceptions import ConfigError
from aureon.secagg import crypto, fixed_point, graph, masking, prg, ring, shamir
from tests.secagg.driver import settings


# ------------------------------------------------------------------ ring
def test_ring_arithmetic_wraps_modulo_two_to_the_bits() -> None:
    a = np.array([0, 5, 2**20 - 1], dtype=np.uint64)
    b = np.array([2**20 - 1, 7, 1], dtype=np.uint64)
    assert ring.add(a, b, 20).tolist() == [2**20 - 1, 12, 0]
    assert ring.sub(a, b, 20).tolist() == [1, 2**20 - 2, 2**20 - 2]
    assert ring.wire_dtype(32) == np.uint32 and ring.wire_dtype(33) == np.uint64
    assert ring.in_range(np.array([2**20 - 1]), 20) and not ring.in_range(np.array([2**20]), 20)


# ---------------------------------------------------------- quantization
@hsettings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=1, max_size=30),
    copies=st.integers(min_value=1, max_value=9),
    bits=st.integers(min_value=2, max_value=30),
    clip=st.floats(min_value=0.01, max_value=8),
)
def test_dequantized_sum_is_within_the_stated_bound(values, copies, bits, clip) -> None:
    x = np.array(values)
    levels = fixed_point.quantize(x, clipping_range=clip, bits=bits)
    assert levels.max() <= 2**bits - 1
    total = sum(levels for _ in range(copies))
    recovered = fixed_point.dequantize_sum(total, count=copies, clipping_range=clip, bits=bits)
    exact = copies * np.clip(x, -clip, clip)
    bound = fixed_point.sum_error_bound(count=copies, clipping_range=clip, bits=bits)
    assert np.all(np.abs(recovered - exact) <= bound * (1 + 1e-9) + 1e-12)


def test_the_bound_is_tight_for_values_between_two_levels() -> None:
    step = fixed_point.step_size(clipping_range=1.0, bits=4)
    x = np.array([-1.0 + 0.5 * step])
    recovered = fixed_point.dequantize_sum(
        fixed_point.quantize(x, clipping_range=1.0, bits=4), count=1, clipping_range=1.0, bits=4
    )
    assert abs(recovered[0] - x[0]) == pytest.approx(step / 2)


# ---------------------------------------------------------------- shamir
def test_any_threshold_shares_recover_the_secret_and_fewer_do_not() -> None:
    secret = int.from_bytes(bytes(range(32)), "big")
    shares = shamir.split(secret, threshold=3, points=[1, 2, 3, 4, 5])
    for subset in itertools.combinations(shares, 3):
        assert shamir.interpolate_at({x: shares[x] for x in subset}, 0) == secret
    for subset in itertools.combinations(shares, 2):
        assert shamir.interpolate_at({x: shares[x] for x in subset}, 0) != secret


def test_share_encoding_rejects_values_outside_the_field() -> None:
    assert shamir.from_bytes(shamir.to_bytes(shamir.PRIME - 1)) == shamir.PRIME - 1
    with pytest.raises(ValueError):
        shamir.from_bytes(b"\xff" * shamir.SHARE_BYTES)
    with pytest.raises(ValueError):
        shamir.from_bytes(b"\x00")
    with pytest.raises(ValueError, match="threshold"):
        shamir.split(1, threshold=4, points=[1, 2, 3])
    with pytest.raises(ValueError, match="distinct"):
        shamir.split(1, threshold=2, points=[1, 1, 2])


# ---------------------------------------------------------------- crypto
def test_key_agreement_is_symmetric_and_bound_to_its_purpose() -> None:
    a, b = crypto.generate_private_key(), crypto.generate_private_key()
    pa, pb = crypto.public_key(a), crypto.public_key(b)
    ab = masking.pairwise_seeds(a, {2: pb}, server_round=3, me=1)[2]
    assert ab == masking.pairwise_seeds(b, {1: pa}, server_round=3, me=2)[1]
    assert ab != masking.pairwise_seeds(a, {2: pb}, server_round=4, me=1)[2]
    assert ab != masking.encryption_keys(a, {2: pb}, server_round=3, me=1)[2]
    with pytest.raises(crypto.CryptoError):
        crypto.derive_key(a, bytes(32), info=b"x")  # low-order point


def test_authenticated_encryption_detects_tampering_and_misrouting() -> None:
    key = bytes(range(32))
    blob = crypto.encrypt(key, b"share", associated_data=b"1->2")
    assert crypto.decrypt(key, blob, associated_data=b"1->2") == b"share"
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(key, blob, associated_data=b"3->2")
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(key, blob[:-1] + bytes([blob[-1] ^ 1]), associated_data=b"1->2")


# ------------------------------------------------------------------- prg
def test_mask_expansion_is_deterministic_uniform_and_seed_dependent() -> None:
    seed = bytes(32)
    first = prg.expand(seed, length=50_000, bits=16)
    assert np.array_equal(first, prg.expand(seed, length=50_000, bits=16))
    assert not np.array_equal(first, prg.expand(b"\x01" + seed[1:], length=50_000, bits=16))
    assert first.max() < 2**16
    counts = np.bincount(first >> np.uint64(10), minlength=64)
    assert np.sum((counts - 50_000 / 64) ** 2 / (50_000 / 64)) < 125  # chi-square, 63 dof


def test_masks_of_two_clients_cancel_in_their_sum() -> None:
    a, b = crypto.generate_private_key(), crypto.generate_private_key()
    x, y = np.arange(10, dtype=np.uint64), np.arange(10, 20, dtype=np.uint64)
    seed_ab = masking.pairwise_seeds(a, {2: crypto.public_key(b)}, server_round=1, me=1)[2]
    ya = masking.mask_input(x, me=1, self_seed=bytes(32), pairwise_seeds={2: seed_ab}, bits=32)
    yb = masking.mask_input(y, me=2, self_seed=b"\x02" * 32, pairwise_seeds={1: seed_ab}, bits=32)
    total = ring.add(ya, yb, 32)
    for self_seed in (bytes(32), b"\x02" * 32):
        total = ring.sub(total, prg.expand(self_seed, length=10, bits=32), 32)
    assert total.tolist() == (x + y).tolist()


# ----------------------------------------------------------------- graph
@pytest.mark.parametrize("num_clients, size", [(5, 5), (9, 3), (10, 5), (50, 11), (4, 9)])
def test_neighbourhoods_are_symmetric_and_of_the_requested_size(num_clients: int, size: int) -> None:
    seed = graph.draw_graph_seed()
    links = graph.neighbourhoods(seed, num_clients=num_clients, neighbourhood_size=size)
    for i, peers in links.items():
        assert i not in peers
        assert len(peers) == min(size, num_clients) - 1
        assert all(i in links[j] for j in peers)
        assert peers == graph.neighbours(i, graph_seed=seed, num_clients=num_clients, neighbourhood_size=size)


def test_index_assignment_is_a_bijection_from_fresh_entropy() -> None:
    nodes = [9 + 7 * i for i in range(20)]
    first = graph.assign_indices(nodes)
    assert sorted(first.values()) == list(range(1, 21)) and set(first) == set(nodes)
    assert graph.assign_indices(nodes) != first  # equal with probability 1 / 20!


def test_the_graph_is_a_function_of_its_seed_alone() -> None:
    seed = graph.draw_graph_seed()
    one = graph.neighbourhoods(seed, num_clients=30, neighbourhood_size=5)
    assert graph.neighbourhoods(bytes(seed), num_clients=30, neighbourhood_size=5) == one
    assert graph.neighbourhoods(graph.draw_graph_seed(), num_clients=30, neighbourhood_size=5) != one


# ---------------------------------------------------------------- params
def test_round_parameters_resolve_defaults_and_refuse_unsafe_settings() -> None:
    params = settings().for_round(5)
    assert (params.neighbourhood_size, params.threshold) == (5, 3)
    assert settings(num_shares=11).for_round(50).threshold == 6
    with pytest.raises(ConfigError, match="secure_aggregation.threshold"):
        settings(threshold=2).for_round(5)
    with pytest.raises(ConfigError, match="secure_aggregation.num_shares"):
        settings(num_shares=4).for_round(10)
    with pytest.raises(ConfigError, match="secure_aggregation.modulus_bits"):
        settings(modulus_bits=24, quantization_bits=20).for_round(50)
    with pytest.raises(ConfigError, match="secure_aggregation.max_weight"):
        settings(modulus_bits=21, quantization_bits=10, max_weight=2**20).for_round(5)
    with pytest.raises(ConfigError, match="at least 2 sampled clients"):
        settings().for_round(1)
