"""int8 quantization: it runs, agrees with the original, its file is smaller and reloads exactly."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from aureon.model_compression.int8_io import load_int8_state, save_int8_state
from aureon.model_compression.measure import agreement, count_weights
from aureon.model_compression.quantization import (
    load_quantized,
    quantize_dynamic_int8,
    quantize_static_int8,
    save_quantized,
)


def test_quantized_model_runs_and_agrees_on_most_predictions(trained_mlp) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation notice escapes the module
        quantized = quantize_dynamic_int8(trained_mlp.model)
    logits = quantized(torch.from_numpy(trained_mlp.x_test[:8]))
    assert logits.shape == (8, 10) and torch.isfinite(logits).all()
    assert agreement(trained_mlp.model, quantized, trained_mlp.x_test) >= 0.95
    assert count_weights(quantized).total == count_weights(trained_mlp.model).total
    assert any(p.dtype == torch.float32 for p in trained_mlp.model.parameters())  # input untouched


def test_static_quantization_makes_convolutions_int8_and_agrees(trained_cnn) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quantized = quantize_static_int8(trained_cnn.model, trained_cnn.x_train)
    int8_convs = [m for m in quantized.modules() if isinstance(m, torch.ao.nn.quantized.Conv2d)]
    float_convs = [m for m in quantized.modules() if type(m) is nn.Conv2d]
    # the first convolution reads 1 image channel and stays float; the second is int8
    assert [c.in_channels for c in float_convs] == [1] and len(int8_convs) == 1
    assert not any(type(m) is nn.Linear for m in quantized.modules())
    assert agreement(trained_cnn.model, quantized, trained_cnn.x_test) >= 0.95
    assert count_weights(quantized).total == count_weights(trained_cnn.model).total


def test_static_quantization_needs_calibration_data(trained_cnn) -> None:
    with pytest.raises(ValueError, match="calibration"):
        quantize_static_int8(trained_cnn.model, trained_cnn.x_train[:0])


@pytest.mark.parametrize("scheme", ["dynamic", "static"])
def test_quantized_file_is_smaller_and_reloads_to_the_same_outputs(
    trained_cnn, tmp_path: Path, scheme: str
) -> None:
    float_model = trained_cnn.model
    quantized = (
        quantize_static_int8(float_model, trained_cnn.x_train) if scheme == "static"
        else quantize_dynamic_int8(float_model)
    )
    dense = tmp_path / "dense.pt"
    torch.save(float_model.state_dict(), dense)
    size = save_quantized(quantized, tmp_path / "int8.bin")
    # static: every weight int8 (a quarter of float32) plus scales and the index
    assert size < (0.35 if scheme == "static" else 0.9) * dense.stat().st_size
    restored = load_quantized(float_model, tmp_path / "int8.bin", scheme=scheme,
                              example_x=trained_cnn.x_test[:1])
    x = torch.from_numpy(trained_cnn.x_test[:32])
    assert torch.equal(restored(x), quantized(x))


def test_int8_file_round_trips_every_kind_of_entry(tmp_path: Path) -> None:
    weights = torch.quantize_per_channel(
        torch.randn(4, 3), torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64),
        torch.zeros(4, dtype=torch.int64), 0, torch.qint8,
    )
    activations = torch.quantize_per_tensor(torch.rand(5), 0.01, 3, torch.quint8)
    state = {"w": weights, "a": activations, "bias": torch.randn(4), "zp": torch.tensor(7),
             "packed": (weights, None), "dtype": torch.qint8}
    save_int8_state(state, tmp_path / "q.bin")
    loaded = load_int8_state(tmp_path / "q.bin")
    assert torch.equal(loaded["w"].int_repr(), weights.int_repr())
    assert torch.equal(loaded["w"].q_per_channel_scales(), weights.q_per_channel_scales())
    assert loaded["a"].q_scale() == 0.01 and loaded["a"].q_zero_point() == 3
    assert torch.equal(loaded["a"].int_repr(), activations.int_repr())
    assert torch.equal(loaded["bias"], state["bias"]) and int(loaded["zp"]) == 7
    assert loaded["packed"][1] is None and loaded["dtype"] is torch.qint8


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an aureon-int8-v1 file"):
        load_int8_state(path)
