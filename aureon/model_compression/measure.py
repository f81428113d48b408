"""What a compressed model is worth: file size, weights, accuracy and CPU latency.

Latency is measured for several models interleaved (a few timed calls of each
per round) on one thread, and the fastest round is kept (as ``timeit``
advises): on a shared machine other work only ever adds time, so the minimum
is the best estimate of a model's own cost and the ratios stay meaningful.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aureon.training import evaluate_model


@dataclass(frozen=True)
class WeightCount:
    total: int
    nonzero: int


def count_weights(model: nn.Module) -> WeightCount:
    """Weights and biases, including those packed inside quantized Linear layers."""
    total = nonzero = 0
    for module in model.modules():
        tensors: list[torch.Tensor] = [p.detach() for p in module.parameters(recurse=False)]
        if hasattr(module, "_packed_params") and callable(getattr(module, "weight", None)):
            tensors.append(module.weight().dequantize())  # type: ignore[operator]
            bias = module.bias()  # type: ignore[operator]
            if bias is not None:
                tensors.append(bias.detach())
        for tensor in tensors:
            total += tensor.numel()
            nonzero += int((tensor != 0).sum())
    return WeightCount(total=total, nonzero=nonzero)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.inference_mode()
def latencies_ms(
    models: Mapping[str, nn.Module],
    batch: torch.Tensor,
    *,
    rounds: int = 30,
    calls_per_round: int = 5,
    warmup: int = 5,
    threads: int = 1,
) -> dict[str, float]:
    """Milliseconds per forward pass of each model on ``batch``: best round, interleaved."""
    timings: dict[str, list[float]] = {name: [] for name in models}
    with torch_threads(threads):
        for model in models.values():
            model.eval()
            for _ in range(warmup):
                model(batch)
        for _ in range(rounds):
            for name, model in models.items():
                start = time.perf_counter()
                for _ in range(calls_per_round):
                    model(batch)
                timings[name].append((time.perf_counter() - start) / calls_per_round * 1e3)
    return {name: min(values) for name, values in timings.items()}


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return evaluate_model(model, x, y, batch_size=1024).accuracy


def agreement(a: nn.Module, b: nn.Module, x: np.ndarray) -> float:
    """Fraction of examples on which two models predict the same class."""
    return float((_predict(a, x) == _predict(b, x)).float().mean())


@torch.inference_mode()
def _predict(model: nn.Module, x: np.ndarray) -> torch.Tensor:
    model.eval()
    return torch.cat([model(torch.from_numpy(x[i : i + 1024])).argmax(1) for i in range(0, len(x), 1024)])
