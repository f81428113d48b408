"""int8 quantization after training, with torch's own fbgemm/x86 kernels.

Two schemes. ``dynamic``: Linear weights int8 (one scale per tensor),
activations quantized on the fly per batch, no calibration data; convolutions
stay float32 (dynamic quantization has no conv kernels). ``static``
(post-training, FX graph mode): convolutions and Linear layers int8 with one
scale per output channel, activations int8 with ranges observed on
calibration data that the server may use, so a CNN runs int8 after its
first layer (a convolution over 1-3 image channels stays float32).

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

import numpy as np
import torch
from torch import nn

from aureon.model_compression.int8_io import load_int8_state, save_int8_state
from aureon.model_compression.model_io import load_into

SCHEMES = ("static", "dynamic")
CALIBRATION_EXAMPLES = 1024
MIN_INT8_CONV_CHANNELS = 4

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
        return torch.ao.quantization.quantize_dynamic(float_model, {nn.Linear}, dtype=torch.qint8, inplace=False)


def quantize_static_int8(model: nn.Module, calibration_x: np.ndarray, *, batch_size: int = 256) -> nn.Module:
    """An int8 copy of ``model`` (convs, Linear layers and activations), in eval mode.

    A convolution over fewer than ``MIN_INT8_CONV_CHANNELS`` channels stays float32.

    Activation ranges come from running up to ``CALIBRATION_EXAMPLES`` of
    ``calibration_x`` through the model: use data the server may see.
    """
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if len(calibration_x) == 0:
        raise ValueError("static quantization needs calibration examples, got none")
    float_model = copy.deepcopy(model).eval()
    examples = torch.from_numpy(np.ascontiguousarray(calibration_x[:CALIBRATION_EXAMPLES]))
    with quiet_torch_ao(), torch.no_grad():
        observed = prepare_fx(float_model, _static_qconfig_mapping(float_model), example_inputs=(examples[:1],))
        for start in range(0, len(examples), batch_size):
            observed(examples[start : start + batch_size])
        return convert_fx(observed)


def _static_qconfig_mapping(model: nn.Module):
    """torch's x86 mapping, its global entry spelled with explicit ranges.

    Convolutions over fewer than ``MIN_INT8_CONV_CHANNELS`` input channels (the
    first layer on grayscale or RGB images) stay float32: fbgemm's int8 kernels
    gain nothing there, and the CNN measured faster at batch 64 without them
    (1.65x vs 1.51x over float32) for about 1 KB more on disk.

    The stock entry asks for ``reduce_range`` (7-bit activations, so fbgemm's
    int16 accumulation cannot overflow on CPUs without VNNI), which torch now
    warns about; quant_max=127 is the same thing said the supported way.
    Fixed-range ops (tanh, sigmoid) keep the mapping's own entries.
    """
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import HistogramObserver, PerChannelMinMaxObserver

    qconfig = QConfig(
        activation=HistogramObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=127),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
    )
    mapping = get_default_qconfig_mapping("x86").set_global(qconfig)
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels < MIN_INT8_CONV_CHANNELS:
            mapping.set_module_name(name, None)
    return mapping


def quantize_model_int8(model: nn.Module, scheme: str, calibration_x: np.ndarray) -> nn.Module:
    """``model`` quantized with ``scheme`` ('static' uses ``calibration_x``; 'dynamic' does not)."""
    if scheme == "static":
        return quantize_static_int8(model, calibration_x)
    if scheme == "dynamic":
        return quantize_dynamic_int8(model)
    raise ValueError(f"quantization scheme must be one of {SCHEMES}, got {scheme!r}")


@contextlib.contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """Silence torch.ao's announced-deprecation notices (only those) inside the block."""
    with warnings.catch_warnings():
        for notice in _DEPRECATION_NOTICES:
            warnings.filterwarnings("ignore", message=notice)
        yield


def save_quantized(model: nn.Module, path: Path) -> int:
    """Write the quantized state dict compactly (aureon.model_compression.int8_io); return its size."""
    with quiet_torch_ao():
        return save_int8_state(model.state_dict(), path)


def load_quantized(
    float_model: nn.Module,
    path: Path,
    *,
    scheme: str = "dynamic",
    example_x: np.ndarray | None = None,
) -> nn.Module:
    """Rebuild a model saved by ``save_quantized``.

    The structure comes from quantizing ``float_model`` the same way (``example_x``,
    one or more inputs, shapes a static model); every weight, scale and zero
    point then comes from the file.
    """
    if scheme == "static" and example_x is None:
        raise ValueError("loading a static int8 model needs example_x (one input example)")
    template = quantize_model_int8(float_model, scheme, example_x if example_x is not None else np.empty(0))
    with quiet_torch_ao():
        return load_into(template, load_int8_state(path), path)
