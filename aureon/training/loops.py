"""Local training and evaluation, with or without DP-SGD, on in-memory arrays."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from opacus import PrivacyEngine
from opacus.accountants.accountant import IAccountant
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aureon.config import TrainConfig
from aureon.privacy.accounting import DpPlan
from aureon.privacy.entropy import privacy_generator


@dataclass(frozen=True)
class TrainResult:
    """What one call of local training did."""

    num_examples: int
    mean_loss: float
    steps: int


@dataclass(frozen=True)
class EvalResult:
    num_examples: int
    loss: float
    accuracy: float


def _loader(x: np.ndarray, y: np.ndarray, batch_size: int, generator: torch.Generator) -> DataLoader:
    """Shuffled batches; under DP, Opacus turns this into Poisson sampling from ``generator``."""
    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


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
    dp: DpPlan | None = None,
    accountant: IAccountant | None = None,
    proximal_mu: float = 0.0,
    reproducible_noise_seed: int | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``config.local_epochs`` epochs.

    With ``dp`` set, runs Opacus DP-SGD (Poisson sampling, per-sample clipping,
    Gaussian noise) and records every step in ``accountant``. The noise and the
    Poisson batches come from local entropy, never from ``seed`` (which orders
    the batches of non-private training only); ``reproducible_noise_seed`` is
    the benchmark opt-in that makes them repeatable. Every Poisson batch is a
    step, an empty one included: it releases pure noise, as the accountant
    assumes. The model object stays the plain module, so its state_dict never
    carries Opacus' ``_module.`` prefix.
    """
    with warnings.catch_warnings():
        # Opacus reminds that secure_mode is off and torch notes the full backward
        # hook fires on outputs; both are expected here and would repeat every round.
        warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")
        warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
        return _train(
            model, x, y, config=config, seed=seed, dp=dp, accountant=accountant,
            proximal_mu=proximal_mu, reproducible_noise_seed=reproducible_noise_seed,
        )


def _train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    config: TrainConfig,
    seed: int,
    dp: DpPlan | None,
    accountant: IAccountant | None,
    proximal_mu: float,
    reproducible_noise_seed: int | None,
) -> TrainResult:
    model.train()
    if dp is None:
        generator = torch.Generator().manual_seed(seed)
    else:
        generator = privacy_generator(reproducible_noise_seed)
    loader = _loader(x, y, config.batch_size, generator)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    criterion: nn.Module = nn.CrossEntropyLoss()
    trainable: nn.Module = model
    if dp is not None:
        engine = PrivacyEngine(accountant=dp.accountant)
        if accountant is not None:
            engine.accountant = accountant
        prepared = engine.make_private(
            module=model,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=loader,
            noise_multiplier=dp.noise_multiplier,
            max_grad_norm=dp.max_grad_norm,
            poisson_sampling=True,
            grad_sample_mode=dp.grad_sample_mode,
            noise_generator=generator,
        )
        if len(prepared) == 4:
            trainable, optimizer, criterion, loader = prepared
        else:
            trainable, optimizer, loader = prepared
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    total_loss, batches, steps = 0.0, 0, 0
    for _ in range(config.local_epochs):
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(trainable(xb), yb)
            loss.backward()
            optimizer.step()
            if anchor:
                _proximal_step(model, anchor, config.lr, proximal_mu)
            steps += 1
            if len(xb) > 0:  # an empty Poisson batch has no loss, only noise
                total_loss += float(loss.detach())
                batches += 1
    if dp is not None and hasattr(trainable, "_close"):
        trainable._close()
    return TrainResult(num_examples=len(x), mean_loss=total_loss / max(batches, 1), steps=steps)


@torch.no_grad()
def evaluate_model(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, batch_size: int = 1024
) -> EvalResult:
    """Mean cross-entropy and accuracy of ``model`` on (x, y)."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start : start + batch_size])
        yb = torch.from_numpy(y[start : start + batch_size])
        logits = model(xb)
        total_loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(dim=1) == yb).sum())
    n = max(len(x), 1)
    return EvalResult(num_examples=len(x), loss=total_loss / n, accuracy=correct / n)
