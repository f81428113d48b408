"""Dynamic int8 quantization of Linear layers, with torch's own fbgemm/x86 kernels.

Weights are stored as int8 with one scale per tensor; activations are
quantized on the fly per batch, so no calibration data is needed. Only Linear
layers are converted: convolutions stay float32 (dynamic quantization has no
conv kernels).

torch 2.13 still ships ``torch.ao.quantization`` but announces its removal
(its notice says "will be removed in 2.10") in favour of torchao, which is
not a dependency here. Stock torch has no other fast int8 CPU path:
``torch._int_mm`` measured 40x slower than a float32 Linear on an MNIST-sized
layer, while ``torch.ao``'s dynamic Linear runs fbgemm/x86 int8 GEMM. So this
module is the one place that calls ``torch.ao``; its deprecation notices are
silenced by message for these calls only. Moving to torchao means changing
this file alone.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

_DEPRECATION_NOTICES = (
    r"torch\.ao\.quantization is deprecated",
    r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor",
    r"TypedStorage is deprecated",  # raised by torch.save / torch.load of quantized weights
)


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """An int8 copy of ``model`` (Linear layers quantized), in eval mode; the input is untouched."""
    float_model = copy.deepcopy(model).eval()
    if not any(isinstance(m, nn.Linear) for m in float_model.modules()):
        raise ValueError(f"{type(model).__name__} has no Linear layer to quantize")
    with quiet_torch_ao():
        return torch.ao.quantization.quantize_dynamic(
            float_model, {nn.Linear}, dtype=torch.qint8, inplace=False
        )


@contextlib.contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """Silence torch.ao's announced-deprecation notices (only those) inside the block."""
    with warnings.catch_warnings():
        for notice in _DEPRECATION_NOTICES:
            warnings.filterwarnings("ignore", message=notice)
        yield


def save_quantized(model: nn.Module, path: Path) -> int:
    """torch.save the quantized state dict; return the file's size in bytes."""
    with quiet_torch_ao():
        torch.save(model.state_dict(), path)
    return Path(path).stat().st_size


def load_quantized(float_model: nn.Module, path: Path) -> nn.Module:
    """Rebuild a quantized model saved by ``save_quantized`` (structure from ``float_model``)."""
    quantized = quantize_dynamic_int8(float_model)
    with quiet_torch_ao():
        quantized.load_state_dict(torch.load(path, weights_only=True))
    return quantized
