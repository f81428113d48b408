"""Small models for DP federated learning: no BatchNorm (incompatible with per-sample DP)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from aureon.exceptions import ConfigError


class SmallCNN(nn.Module):
    """Two tanh conv blocks and a small head (Papernot et al., 2021 style).

    tanh keeps activations bounded, which suits clipped, noisy DP-SGD updates.
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (16, 32),
        hidden: int = 32,
    ) -> None:
        super().__init__()
        in_channels, height, width = input_shape
        c1, c2 = channels
        large = min(height, width) >= 16
        self.features = nn.Sequential(
            nn.Conv2d(
                in_channels, c1, kernel_size=8 if large else 3, stride=2 if large else 1, padding=3 if large else 1
            ),
            nn.Tanh(),
            nn.MaxPool2d(2, 1),
            nn.Conv2d(c1, c2, kernel_size=4 if large else 3, stride=2 if large else 1),
            nn.Tanh(),
            nn.MaxPool2d(2, 1),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, height, width)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.Tanh(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """Fully connected ReLU network on the flattened input."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (128,),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LogisticRegression(nn.Module):
    """Multinomial logistic regression on the flattened input."""

    def __init__(self, *, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FeatureLinear(nn.Module):
    """A linear classifier on feature maps, each example's maps normalised in groups.

    GroupNorm (no learned affine) evens out the very different scales of a
    scattering transform's orders per example, so it needs no dataset statistics
    (which would cost privacy) and suits per-sample DP-SGD.
    """

    def __init__(self, *, input_shape: Sequence[int], num_classes: int, groups: int = 27) -> None:
        super().__init__()
        channels = input_shape[0]
        if len(input_shape) != 3 or groups < 1 or channels % groups:
            raise ConfigError(
                f"model.groups must divide the input's channels, got groups={groups!r} for "
                f"inputs of shape {tuple(input_shape)}; model=feature_linear expects feature "
                "maps (features=scattering gives 81 per image channel)"
            )
        self.norm = nn.GroupNorm(groups, channels, affine=False)
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(self.norm(x), 1))
