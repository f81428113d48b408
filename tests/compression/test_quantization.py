"""Dynamic int8 quantization: it runs, it agrees with the original, its file is smaller."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from aureon.compression.measure import agreement, count_weights
from aureon.compression.quantization import load_quantized, quantize_dynamic_int8, save_quantized


def test_quantized_model_runs_and_agrees_on_most_predictions(trained_mlp) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation notice escapes the module
        quantized = quantize_dynamic_int8(trained_mlp.model)
    logits = quantized(torch.from_numpy(trained_mlp.x_test[:8]))
    assert logits.shape == (8, 10) and torch.isfinite(logits).all()
    assert agreement(trained_mlp.model, quantized, trained_mlp.x_test) >= 0.95
    assert count_weights(quantized).total == count_weights(trained_mlp.model).total
    assert any(p.dtype == torch.float32 for p in trained_mlp.model.parameters())  # input untouched


def test_quantized_file_is_smaller_and_reloads_to_the_same_outputs(trained_mlp, tmp_path: Path) -> None:
    quantized = quantize_dynamic_int8(trained_mlp.model)
    dense = tmp_path / "dense.pt"
    torch.save(trained_mlp.model.state_dict(), dense)
    size = save_quantized(quantized, tmp_path / "int8.pt")
    assert size < 0.5 * dense.stat().st_size
    restored = load_quantized(trained_mlp.model, tmp_path / "int8.pt")
    x = torch.from_numpy(trained_mlp.x_test[:32])
    assert torch.equal(restored(x), quantized(x))
