"""What a model is trained to do: its loss and the held-out score reported for it.

Classification trains with cross-entropy and reports accuracy; regression
trains a one-output head with mean squared error and reports R^2. A dataset
names its task (``Dataset.task``) and ``Dataset.objective()`` gives the
objective, so the loops never ask which dataset they are on. Both scores are
accumulated batch by batch from sums, so a test split is read once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn


class Objective(Protocol):
    """A loss to train with and a score to report, computed from per-batch sums."""

    metric: str  # the score's name in results: "accuracy", "r2"

    def criterion(self) -> nn.Module: ...

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        """This batch's summed loss first, then what ``score`` needs, all as sums over its rows."""
        ...

    def score(self, sums: np.ndarray, rows: int) -> float: ...


class Classification:
    """Cross-entropy on logits; the score is accuracy."""

    metric = "accuracy"

    def criterion(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        loss = float(nn.functional.cross_entropy(outputs, targets, reduction="sum"))
        correct = float((outputs.argmax(dim=1) == targets).sum())
        return np.array([loss, correct])

    def score(self, sums: np.ndarray, rows: int) -> float:
        return float(sums[1]) / max(rows, 1)


class RegressionLoss(nn.MSELoss):
    """Mean squared error of a one-output head against a 1-D target.

    The head's (batch, 1) output is flattened first: ``nn.MSELoss`` would
    otherwise broadcast it against (batch,) targets into a (batch, batch)
    error. Opacus' ghost clipping sets ``reduction="none"`` for per-sample
    losses, which this keeps.
    """

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002 (torch's name)
        return super().forward(input.reshape(target.shape), target)


class Regression:
    """Mean squared error; the score is R^2 (1 - residual / total sum of squares, as scikit-learn's)."""

    metric = "r2"

    def criterion(self) -> nn.Module:
        return RegressionLoss()

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        y = targets.to(torch.float64)
        residual = outputs.reshape(targets.shape).to(torch.float64) - y
        squared = float((residual * residual).sum())
        return np.array([squared, squared, float(y.sum()), float((y * y).sum())])

    def score(self, sums: np.ndarray, rows: int) -> float:
        if rows == 0:
            return 0.0
        residual, total, total_squares = float(sums[1]), float(sums[2]), float(sums[3])
        variation = total_squares - total * total / rows
        if variation <= 1e-12 * max(total_squares, 1.0):  # a constant target: scikit-learn's finite convention
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / variation


OBJECTIVES: dict[str, Objective] = {"classification": Classification(), "regression": Regression()}


def objective_for(task: str) -> Objective:
    """The objective of a dataset's task ("classification" or "regression")."""
    try:
        return OBJECTIVES[task]
    except KeyError:
        raise ValueError(f"a dataset's task must be one of {sorted(OBJECTIVES)}, got {task!r}") from None
