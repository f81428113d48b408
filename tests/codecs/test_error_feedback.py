"""Error feedback loses nothing over rounds: what is not sent now is sent later."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aureon.codecs import Int8Codec, NoneCodec, TopKCodec, decode, encode_with_feedback, layout_of


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(1, 8),
    st.floats(0.01, 0.6),
    st.sampled_from(["float16", "float32"]),
)
def test_topk_sum_of_decoded_is_sum_of_updates_minus_final_residual(
    seed: int, rounds: int, ratio: float, value_dtype: str
) -> None:
    rng = np.random.default_rng(seed)
    codec = TopKCodec(ratio=ratio, value_dtype=value_dtype)
    shapes = {"w": (5, 7), "b": (3,)}
    sent_total = {k: np.zeros(s, np.float64) for k, s in shapes.items()}
    update_total = {k: np.zeros(s, np.float64) for k, s in shapes.items()}
    residual = None
    for _ in range(rounds):
        update = {k: rng.normal(0, 1, s).astype(np.float32) for k, s in shapes.items()}
        encoded, residual = encode_with_feedback(codec, update, residual)
        sent = decode(encoded, layout_of(update))
        for k in shapes:
            sent_total[k] += sent[k]
            update_total[k] += update[k]
    for k in shapes:
        np.testing.assert_allclose(
            sent_total[k], update_total[k] - residual[k], atol=1e-4 * rounds
        )


def test_without_feedback_topk_loses_what_it_drops() -> None:
    rng = np.random.default_rng(0)
    codec = TopKCodec(ratio=0.1, value_dtype="float32")
    updates = [{"w": rng.normal(0, 1, 100).astype(np.float32)} for _ in range(5)]
    plain = sum(decode(codec.encode(u), layout_of(u))["w"] for u in updates)
    residual = None
    fed = np.zeros(100)
    for u in updates:
        encoded, residual = encode_with_feedback(codec, u, residual)
        fed += decode(encoded, layout_of(u))["w"]
    truth = sum(u["w"] for u in updates)
    assert np.abs(truth - fed).sum() < np.abs(truth - plain).sum()


def test_feedback_with_int8_also_telescopes() -> None:
    rng = np.random.default_rng(1)
    codec = Int8Codec(seed=3)
    residual, sent, total = None, np.zeros(50), np.zeros(50)
    for _ in range(6):
        u = {"w": rng.normal(0, 1, 50).astype(np.float32)}
        encoded, residual = encode_with_feedback(codec, u, residual)
        sent += decode(encoded, layout_of(u))["w"]
        total += u["w"]
    np.testing.assert_allclose(sent, total - residual["w"], atol=1e-4)


def test_lossless_codec_leaves_no_residual() -> None:
    u = {"w": np.arange(6, dtype=np.float32)}
    _, residual = encode_with_feedback(NoneCodec(), u, None)
    np.testing.assert_array_equal(residual["w"], 0.0)


def test_a_residual_from_another_model_is_refused() -> None:
    with pytest.raises(ValueError, match="different model"):
        encode_with_feedback(
            TopKCodec(ratio=0.5), {"w": np.ones(4, np.float32)}, {"w": np.ones(5, np.float32)}
        )
