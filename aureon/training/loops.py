"""Local training and evaluation, with or without DP-SGD, on arrays in memory or memory-mapped.

Training gathers each batch's rows from the array it is given (``ArrayRows``),
so a client whose partition is a view of the memory-mapped feature file holds
no copy of it: only the batch in hand is copied, and the file's pages it
touched are given back after each batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from aureon.config import TrainConfig
from aureon.features.cache import release_pages
from aureon.privacy.private_training import Loss, PrivateTraining
from aureon.training.objectives import Classification, Objective

CLASSIFICATION = Classification()


@dataclass(frozen=True)
class TrainResult:
    """What one call of local training did."""

    num_examples: int
    mean_loss: float
    steps: int
    grad_sample_mode: str | None = None  # Opacus' per-sample gradient path; None without DP-SGD


@dataclass(frozen=True)
class EvalResult:
    """Mean loss and the objective's score (``metric``: accuracy, or R^2 for regression) on a split."""

    num_examples: int
    loss: float
    score: float
    metric: str = "accuracy"

    @property
    def accuracy(self) -> float:
        """The score of a classifier; a regression model has none (its score is R^2)."""
        if self.metric != "accuracy":
            raise ValueError(f"this evaluation's score is {self.metric!r}, not accuracy")
        return self.score


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``, copied only when it is read-only (a memory-mapped feature file).

    torch shares memory with writable arrays; a read-only map would make it warn and
    would let an in-place op fault, so those pages are copied (one batch at a time in evaluation).
    """
    if not array.flags.writeable:
        array = np.array(array)
    return torch.from_numpy(array)


class ArrayRows(Dataset[tuple[torch.Tensor, ...]]):
    """(x, y) rows of two arrays, fetched a batch at a time (``__getitems__``).

    The same rows, in the same order, as a ``TensorDataset`` over copies of the
    arrays, so training gives the same numbers; but only the batch is copied out
    of ``x`` (a read-only map of the feature file, typically), and the mapped
    pages the gather touched are released at once.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y must have as many rows, got {len(x)} and {len(y)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, ...]]:
        if not len(indices):
            return []
        rows = np.asarray(indices, dtype=np.int64)
        xb = torch.from_numpy(np.ascontiguousarray(self.x[rows]))
        yb = torch.from_numpy(np.ascontiguousarray(self.y[rows]))
        release_pages(self.x)
        return list(zip(xb.unbind(0), yb.unbind(0), strict=True))


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def give_back_free_memory() -> None:
    """Return the allocator's free pages to the operating system.

    After a client's training glibc keeps what torch and Opacus freed (measured:
    ~50 MB per mnist_dp client); a simulated actor trains clients one after
    another, so that memory would pile up in every actor.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


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
    criterion: nn.Module | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``config.local_epochs`` epochs (``criterion``: cross-entropy unless given).

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
        return _train(
            model, x, y, config=config, seed=seed, private=private, proximal_mu=proximal_mu, criterion=criterion
        )


def _train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    config: TrainConfig,
    seed: int,
    private: PrivateTraining | None,
    proximal_mu: float,
    criterion: nn.Module | None = None,
) -> TrainResult:
    model.train()
    dataset = ArrayRows(x, y)
    optimizer: torch.optim.Optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    plain_criterion = criterion if criterion is not None else nn.CrossEntropyLoss()  # MSELoss: a regression head
    loss_of: Callable[[torch.Tensor, torch.Tensor], Loss] = plain_criterion
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
        trainable, optimizer, loss_of, loader = parts.module, parts.optimizer, parts.criterion, parts.loader
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    total_loss, batches, steps = 0.0, 0, 0
    try:
        for _ in range(config.local_epochs):
            for xb, yb in loader:
                optimizer.zero_grad(set_to_none=True)
                loss = loss_of(trainable(xb), yb)
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
        give_back_free_memory()
    return TrainResult(
        num_examples=len(x),
        mean_loss=total_loss / max(batches, 1),
        steps=steps,
        grad_sample_mode=None if parts is None else parts.grad_sample_mode,
    )


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 1024,
    objective: Objective = CLASSIFICATION,
) -> EvalResult:
    """Mean loss and score of ``model`` on (x, y) under ``objective`` (cross-entropy and accuracy unless given)."""
    model.eval()
    sums: np.ndarray | None = None
    for start in range(0, len(x), batch_size):
        xb = as_tensor(x[start : start + batch_size])
        yb = as_tensor(y[start : start + batch_size])
        batch = objective.batch_sums(model(xb), yb)
        sums = batch if sums is None else sums + batch
        release_pages(x)  # a mapped test split is read once per round: its pages need not stay counted here
    n = max(len(x), 1)
    if sums is None:
        return EvalResult(num_examples=0, loss=0.0, score=0.0, metric=objective.metric)
    return EvalResult(
        num_examples=len(x), loss=float(sums[0]) / n, score=objective.score(sums, len(x)), metric=objective.metric
    )
