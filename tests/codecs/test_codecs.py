"""Every update codec against the same contract, plus each codec's own error bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aureon.codecs import (
    CODECS,
    Encoded,
    Fp16Codec,
    Int8Codec,
    NoneCodec,
    TopKCodec,
    build_codec,
    decode,
    layout_of,
)
from aureon.codecs.fp16 import fp16_error_bound
from aureon.codecs.int8 import dequantize_int8, int8_scales, quantize_int8, stochastic_round
from aureon.codecs.topk import keep_count, topk_select

FINITE = st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False, width=32)


def _state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "conv.weight": rng.normal(0, 0.2, (4, 1, 3, 3)).astype(np.float32),
        "conv.bias": rng.normal(0, 0.05, (4,)).astype(np.float32),
        "steps": np.array(7, dtype=np.int64),
        "fc.weight": rng.normal(0, 0.1, (10, 36)).astype(np.float32),
        "fc.bias": np.zeros(10, dtype=np.float32),
    }


@pytest.mark.parametrize("name", sorted(CODECS))
def test_codec_contract_round_trip_keeps_names_shapes_dtypes_and_exact_integers(name: str) -> None:
    state = _state(np.random.default_rng(0))
    codec = build_codec(name, seed=1, topk_ratio=0.25)
    encoded = codec.encode(state)
    assert encoded.codec == name
    decoded = decode(encoded, layout_of(state))
    assert list(decoded) == list(state)
    for key, value in state.items():
        assert decoded[key].shape == value.shape and decoded[key].dtype == value.dtype
    np.testing.assert_array_equal(decoded["steps"], state["steps"])
    np.testing.assert_array_equal(decoded["fc.bias"], 0.0)  # zeros survive every codec


@pytest.mark.parametrize("name", sorted(CODECS))
def test_codec_contract_refuses_a_payload_of_another_codec_or_model(name: str) -> None:
    state = _state(np.random.default_rng(1))
    encoded = build_codec(name, seed=0, topk_ratio=0.5).encode(state)
    other = "int8" if name != "int8" else "fp16"
    with pytest.raises(ValueError, match="codec"):
        CODECS[other].decode(encoded, layout_of(state))
    smaller = {k: v for k, v in state.items() if k != "fc.weight"}
    with pytest.raises(ValueError):
        decode(encoded, layout_of(smaller))


@pytest.mark.parametrize("name", ["fp16", "int8", "topk"])
def test_lossy_codecs_carry_fewer_bytes_than_float32(name: str) -> None:
    state = _state(np.random.default_rng(2))
    payload = build_codec(name, seed=0, topk_ratio=0.05).encode(state)
    dense = NoneCodec().encode(state)
    size = sum(a.nbytes for a in payload.arrays.values())
    assert size < sum(a.nbytes for a in dense.arrays.values())


def test_decode_names_an_unknown_codec() -> None:
    with pytest.raises(ValueError, match="'zstd'"):
        decode(Encoded(codec="zstd", arrays={}), layout_of({"w": np.zeros(2, np.float32)}))


def test_same_seed_same_bits_other_seed_other_bits() -> None:
    state = _state(np.random.default_rng(3))
    a = Int8Codec(seed=5).encode(state).arrays["codes"]
    b = Int8Codec(seed=5).encode(state).arrays["codes"]
    c = Int8Codec(seed=6).encode(state).arrays["codes"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ------------------------------------------------------------------------ none
@settings(deadline=None)
@given(arrays(np.float32, st.integers(1, 64), elements=FINITE))
def test_none_is_exact(x: np.ndarray) -> None:
    state = {"w": x}
    np.testing.assert_array_equal(decode(NoneCodec().encode(state), layout_of(state))["w"], x)


# ------------------------------------------------------------------------ fp16
@settings(deadline=None)
@given(arrays(np.float32, st.integers(1, 64), elements=FINITE))
def test_fp16_error_is_at_most_half_an_ulp(x: np.ndarray) -> None:
    state = {"w": x}
    out = decode(Fp16Codec().encode(state), layout_of(state))["w"]
    assert np.all(np.abs(out.astype(np.float64) - x) <= fp16_error_bound(x))


def test_fp16_refuses_values_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="65504"):
        Fp16Codec().encode({"w": np.array([1e6], dtype=np.float32)})


# ------------------------------------------------------------------------ int8
def test_int8_hand_computed_case() -> None:
    x = np.array([-2.54, 0.0, 1.27, 2.54], dtype=np.float32)
    codes, scales = quantize_int8(x, (4,), np.random.default_rng(0))
    assert scales[0] == pytest.approx(0.02)
    assert codes[0] == -127 and codes[1] == 0 and codes[3] == 127
    assert codes[2] in (63, 64)  # 1.27 / 0.02 = 63.5: either neighbour, never further


@settings(deadline=None)
@given(
    arrays(np.float32, st.integers(1, 40), elements=FINITE),
    arrays(np.float32, st.integers(1, 40), elements=FINITE),
    st.integers(0, 2**31 - 1),
)
def test_int8_error_below_one_step_per_tensor(a: np.ndarray, b: np.ndarray, seed: int) -> None:
    flat = np.concatenate([a, b])
    sizes = (a.size, b.size)
    codes, scales = quantize_int8(flat, sizes, np.random.default_rng(seed))
    out = dequantize_int8(codes, scales, sizes)
    step = np.repeat(scales.astype(np.float64), sizes)
    assert np.all(np.abs(out - flat) <= step * (1 + 1e-6) + 1e-12)
    assert codes.dtype == np.int8 and np.all(np.abs(codes.astype(int)) <= 127)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, st.integers(1, 16), elements=FINITE), st.integers(0, 2**31 - 1))
def test_int8_is_unbiased_the_mean_over_many_seeds_converges(x: np.ndarray, seed: int) -> None:
    draws = 4000
    scale = float(int8_scales(x, (x.size,))[0])
    # 4000 independent quantizations at once: the same tensor repeated as 4000 segments
    sizes = (x.size,) * draws
    codes, scales = quantize_int8(np.tile(x, draws), sizes, np.random.default_rng(seed))
    mean = dequantize_int8(codes, scales, sizes).reshape(draws, x.size).mean(axis=0)
    # each draw errs by < scale with mean 0: the mean's std is < scale / (2 sqrt(draws))
    assert np.all(np.abs(mean - x) <= 6 * scale / (2 * np.sqrt(draws)) + 1e-9)


def test_nearest_rounding_would_be_biased_where_stochastic_is_not() -> None:
    x = np.full(200_000, 0.3)
    mean = stochastic_round(x, np.random.default_rng(0)).mean()
    assert mean == pytest.approx(0.3, abs=0.005) and np.round(x).mean() == 0.0


# ------------------------------------------------------------------------ topk
@settings(deadline=None)
@given(
    arrays(np.float32, st.integers(1, 60), elements=FINITE),
    arrays(np.float32, st.integers(1, 60), elements=FINITE),
    st.floats(0.01, 1.0),
)
def test_topk_keeps_the_largest_of_each_tensor(a: np.ndarray, b: np.ndarray, ratio: float) -> None:
    flat = np.concatenate([a, b])
    sizes = (a.size, b.size)
    chosen = topk_select(flat, sizes, ratio)
    assert len(chosen) == keep_count(a.size, ratio) + keep_count(b.size, ratio)
    for start, stop in ((0, a.size), (a.size, a.size + b.size)):
        inside = chosen[(chosen >= start) & (chosen < stop)]
        dropped = np.setdiff1d(np.arange(start, stop), inside)
        if dropped.size:
            assert np.abs(flat[inside]).min() >= np.abs(flat[dropped]).max()


@settings(deadline=None)
@given(arrays(np.float32, st.integers(1, 80), elements=FINITE), st.floats(0.01, 1.0))
def test_topk_decoded_is_input_on_kept_entries_and_zero_elsewhere(x: np.ndarray, ratio: float) -> None:
    state = {"w": x}
    encoded = TopKCodec(ratio=ratio, value_dtype="float32").encode(state)
    out = decode(encoded, layout_of(state))["w"]
    kept = np.zeros(x.size, dtype=bool)
    kept[encoded.arrays["indices"]] = True
    np.testing.assert_array_equal(out[kept], x[kept])
    np.testing.assert_array_equal(out[~kept], 0.0)
    assert encoded.arrays["indices"].dtype == np.int32


def test_topk_hand_computed_case() -> None:
    state = {"a": np.array([0.1, -3.0, 2.0, 0.5], np.float32), "b": np.array([1.0, -1.5], np.float32)}
    encoded = TopKCodec(ratio=0.5, value_dtype="float32").encode(state)
    assert encoded.arrays["indices"].tolist() == [1, 2, 5]
    assert encoded.arrays["values"].tolist() == [-3.0, 2.0, -1.5]


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, float("nan")])
def test_topk_ratio_out_of_range_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio"):
        TopKCodec(ratio=ratio)
