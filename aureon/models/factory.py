"""Build a model from its config: the one place models are instantiated."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hydra.utils import instantiate
from torch import nn

from aureon.config import ModelConfig


def build_model(
    config: ModelConfig, *, input_shape: Sequence[int], num_classes: int, seed: int
) -> nn.Module:
    """Instantiate the model; its initial weights depend on ``seed`` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = instantiate(
            config, input_shape=tuple(input_shape), num_classes=num_classes, _convert_="all"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model._target_={config._target_!r} did not build an nn.Module")
    return model
