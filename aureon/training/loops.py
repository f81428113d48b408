"""Local training and evaluation, with or without DP-SGD, on in-memory arrays."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aureon.config import TrainConfig
from aureon.privacy.private_training import Loss, PrivateTraining


@dataclass(frozen=True)
class TrainResult:
    """What one call of local training did."""

    num_examples: int
    mean_loss: float
    steps: int
    grad_sample_mode: str | None = None  # Opacus' per-sample gradient path; None without DP-SGD


@dataclass(frozen=True)
class EvalResult:
    num_examples: int
    loss: float
    accuracy: float


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``, copied only when it is read-only (a memory-mapped feature file).

    torch shares memory with writable arrays; a read-only map would make it warn and
    would let an in-place op fault, so those pages are copied (one batch at a time in evaluation).
    """
    if not array.flags.writeable:
        array = np.array(array)
    return torch.from_numpy(array)


def _proximal_step(model: nn.Module, anchor: list[torch.Tensor], lr: float, mu: float) -> None:
    """Pull the weights towards the round's global model (FedProx's mu/2 ||w - w_t||^2).

    Applied as a separate step after the optimizer's, so it also works under
    DP-SGD, where the loss is differentiated per sample: the pull depends only
    on public weights and costs no privacy.
    """
    with torch.no_grad():
        for param, start in zip(model.parameters(), anchor, strict=True):
            param.sub_(lr * mu * (param - start))


def train_model(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    config: TrainConfig,
    seed: int,
    private: PrivateTraining | None = None,
    proximal_mu: float = 0.0,
) -> TrainResult:
    """Train ``model`` in place for ``config.local_epochs`` epochs.

    With ``private`` set, the steps are DP-SGD as that object wires them
    (Poisson sampling and noise from its own generator, never from ``seed``,
    which orders the batches of non-private training only). Every Poisson
    batch is a step, an empty one included: it releases pure noise, as the
    accountant assumes. The model object stays the plain module, so its
    state_dict never carries Opacus' ``_module.`` prefix.
    """
    with warnings.catch_warnings():
        # Opacus reminds that secure_mode is off and torch notes the full backward
        # hook fires on outputs; both are expected here and would repeat every round.
        warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")
        warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
        return _train(model, x, y, config=config, seed=seed, private=private, proximal_mu=proximal_mu)


def _train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    config: TrainConfig,
    seed: int,
    private: PrivateTraining | None,
    proximal_mu: float,
) -> TrainResult:
    model.train()
    dataset = TensorDataset(as_tensor(x), as_tensor(y))
    optimizer: torch.optim.Optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    plain_criterion = nn.CrossEntropyLoss()
    criterion: Callable[[torch.Tensor, torch.Tensor], Loss] = plain_criterion
    trainable: nn.Module = model
    parts = None
    if private is None:
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=generator)
    else:
        parts = private.attach(
            model=model,
            optimizer=optimizer,
            criterion=plain_criterion,
            dataset=dataset,
            batch_size=config.batch_size,
        )
        trainable, optimizer, criterion, loader = parts.module, parts.optimizer, parts.criterion, parts.loader
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    total_loss, batches, steps = 0.0, 0, 0
    try:
        for _ in range(config.local_epochs):
            for xb, yb in loader:
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(trainable(xb), yb)
                loss.backward()  # under ghost clipping: the norm pass, then the clipped pass
                optimizer.step()
                if anchor:
                    _proximal_step(model, anchor, config.lr, proximal_mu)
                steps += 1
                if len(xb) > 0:  # an empty Poisson batch has no loss, only noise
                    total_loss += float(loss.detach())
                    batches += 1
    finally:
        if parts is not None:
            PrivateTraining.detach(parts)
    return TrainResult(
        num_examples=len(x),
        mean_loss=total_loss / max(batches, 1),
        steps=steps,
        grad_sample_mode=None if parts is None else parts.grad_sample_mode,
    )


@torch.no_grad()
def evaluate_model(model: nn.Module, x: np.ndarray, y: np.ndarray, *, batch_size: int = 1024) -> EvalResult:
    """Mean cross-entropy and accuracy of ``model`` on (x, y)."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = as_tensor(x[start : start + batch_size])
        yb = as_tensor(y[start : start + batch_size])
        logits = model(xb)
        total_loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(dim=1) == yb).sum())
    n = max(len(x), 1)
    return EvalResult(num_examples=len(x), loss=total_loss / n, accuracy=correct / n)
