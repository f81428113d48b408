"""Knowledge distillation of a trained (global) model into a smaller student.

The student learns from the teacher's softened outputs (temperature T, the
KL term scaled by T^2 as in Hinton et al., 2015) mixed with the true labels,
on data the server may use. Distilling a DP-trained teacher on data that was
never a client's is post-processing: the student inherits the teacher's
guarantee and spends no client's budget.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from aureon.config import ModelConfig
from aureon.config.registry import REGISTRY


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)."""
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.log_softmax(teacher_logits / temperature, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    hard = F.cross_entropy(student_logits, labels)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


def distill(
    teacher: nn.Module,
    student: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 3e-3,
    temperature: float = 4.0,
    alpha: float = 0.7,
    seed: int = 0,
) -> nn.Module:
    """Train ``student`` in place to match ``teacher`` on (x, y); return it in eval mode."""
    if epochs < 1 or batch_size < 1 or lr <= 0 or temperature <= 0 or not 0 <= alpha <= 1:
        raise ValueError(
            "distill: expected epochs >= 1, batch_size >= 1, lr > 0, temperature > 0, "
            f"alpha in [0, 1]; got {epochs}, {batch_size}, {lr}, {temperature}, {alpha}"
        )
    teacher.eval()
    with torch.no_grad():
        targets = torch.cat([teacher(torch.from_numpy(x[i : i + 1024])) for i in range(0, len(x), 1024)])
    data = TensorDataset(torch.from_numpy(x), targets, torch.from_numpy(y))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    student.train()
    for _ in range(epochs):
        for xb, tb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = distillation_loss(student(xb), tb, yb, temperature=temperature, alpha=alpha)
            loss.backward()
            optimizer.step()
            schedule.step()
    return student.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _distillable_models() -> list[str]:
    """The model options that define a smaller student (``ModelConfig.scaled``)."""
    return [name for name, option in REGISTRY.options("model").items() if option.schema().scaled(0.5) is not None]


def _scaled(config: ModelConfig, factor: float) -> ModelConfig:
    scaled = config.scaled(factor)
    if scaled is None:
        raise ValueError(
            f"no smaller student is defined for model._target_={config._target_!r}; "
            f"distillation supports the models {_distillable_models()}"
        )
    return scaled


def student_config(
    config: ModelConfig, *, max_fraction: float, build: Callable[[ModelConfig], nn.Module]
) -> ModelConfig:
    """The widest same-family model with at most ``max_fraction`` of the teacher's parameters.

    Every width (channels, hidden units) is scaled by one factor, searched
    downwards in steps of 1%, so the student keeps the teacher's shape.
    """
    if not 0 < max_fraction < 1:
        raise ValueError(f"student fraction must be in (0, 1), got {max_fraction!r}")
    budget = max_fraction * count_parameters(build(config))
    for step in range(99, 0, -1):
        candidate = _scaled(config, step / 100)
        if count_parameters(build(candidate)) <= budget:
            return candidate
    raise ValueError(
        f"even a 1%-width student of model._target_={config._target_!r} has more than "
        f"{max_fraction:.0%} of the teacher's parameters"
    )
