"""Global magnitude pruning with torch.nn.utils.prune, made permanent.

All Conv and Linear weights compete in one ranking (global L1), so layers
with many small weights give up more than thin ones. An optional short
fine-tune with the masks in place lets the surviving weights compensate;
``prune.remove`` then bakes the zeros into plain tensors.
"""

from __future__ import annotations

import math

import numpy as np
from torch import nn
from torch.nn.utils import prune

from aureon.config import TrainConfig
from aureon.training import train_model

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, "weight") for every Conv and Linear layer; biases are left dense."""
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE)]


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the prunable weights."""
    weights = [getattr(m, name) for m, name in prunable_weights(model)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / max(total, 1)


def prune_global_magnitude(
    model: nn.Module,
    *,
    sparsity: float,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    fine_tune: TrainConfig | None = None,
    seed: int = 0,
) -> nn.Module:
    """Zero the ``sparsity`` fraction of smallest-magnitude weights, in place, permanently.

    With ``fine_tune`` and data (x, y), trains with the masks applied before
    making them permanent, so pruned weights stay zero while the rest adapt.
    """
    if not (math.isfinite(sparsity) and 0.0 <= sparsity < 1.0):
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    targets = prunable_weights(model)
    if not targets:
        raise ValueError(f"{type(model).__name__} has no Conv or Linear weights to prune")
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    if fine_tune is not None:
        if x is None or y is None:
            raise ValueError("fine-tuning a pruned model needs data: pass x and y")
        train_model(model, x, y, config=fine_tune, seed=seed)
    for module, name in targets:
        prune.remove(module, name)
    return model
