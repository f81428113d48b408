"""A torch MLP as a scikit-learn estimator, trained by AUREON's own loop (aureon.training).

It sits at the end of a preprocessing Pipeline like any other family, so the
search compares it with the trees and kernels on the same folds. Regression
targets are standardised for training and mapped back in ``predict``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

TASKS = ("classification", "regression")


class TorchMLP(BaseEstimator):  # type: ignore[misc]
    """ReLU MLP (``depth`` hidden layers of ``width``) trained with SGD + momentum."""

    def __init__(
        self,
        *,
        task: str = "classification",
        width: int = 64,
        depth: int = 2,
        lr: float = 0.05,
        epochs: int = 50,
        batch_size: int = 32,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.task = task
        self.width = width
        self.depth = depth
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed

    def architecture(self) -> dict[str, Any]:
        """What rebuilding the fitted network needs besides its weights (see aureon.automl.export)."""
        return {
            "task": self.task,
            "n_inputs": int(self.n_features_in_),
            "hidden": [int(self.width)] * int(self.depth),
            "n_outputs": int(self.n_outputs_),
            "classes": None if self.task == "regression" else self.classes_.tolist(),
            "y_mean": float(self.y_mean_),
            "y_scale": float(self.y_scale_),
        }

    def _network(self, n_inputs: int, n_outputs: int) -> Any:
        from aureon.models.zoo import MLP

        return MLP(input_shape=(n_inputs,), num_classes=n_outputs, hidden=(int(self.width),) * int(self.depth))

    def fit(self, x: Any, y: Any) -> TorchMLP:
        import torch
        from torch import nn

        from aureon.config import TrainConfig
        from aureon.training import train_model

        if self.task not in TASKS:
            raise ValueError(f"TorchMLP.task must be one of {TASKS}, got {self.task!r}")
        features = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        target = np.asarray(y)
        self.n_features_in_ = features.shape[1]
        criterion: nn.Module
        labels: np.ndarray
        if self.task == "classification":
            self.classes_, codes = np.unique(target, return_inverse=True)
            labels = codes.astype(np.int64)
            self.n_outputs_ = len(self.classes_)
            self.y_mean_, self.y_scale_ = 0.0, 1.0
            criterion = nn.CrossEntropyLoss()
        else:
            values = target.astype(np.float64)
            self.y_mean_ = float(values.mean())
            self.y_scale_ = float(values.std()) or 1.0
            labels = ((values - self.y_mean_) / self.y_scale_).astype(np.float32).reshape(-1, 1)
            self.n_outputs_ = 1
            criterion = nn.MSELoss()
        torch.manual_seed(int(self.seed))
        self.network_ = self._network(self.n_features_in_, self.n_outputs_)
        config = TrainConfig(
            local_epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            lr=float(self.lr),
            momentum=0.9,
            weight_decay=float(self.weight_decay),
        )
        result = train_model(self.network_, features, labels, config=config, seed=int(self.seed), criterion=criterion)
        if not np.isfinite(result.mean_loss):
            raise FloatingPointError(f"the MLP diverged (mean loss {result.mean_loss}) at lr={self.lr}")
        return self

    def load_network(self, architecture: dict[str, Any], state: dict[str, Any]) -> TorchMLP:
        """Set the fitted state from ``architecture()`` and a state_dict (loading a saved pipeline)."""
        self.task = architecture["task"]
        hidden = architecture["hidden"]
        self.width, self.depth = (hidden[0] if hidden else 1), len(hidden)
        self.n_features_in_ = architecture["n_inputs"]
        self.n_outputs_ = architecture["n_outputs"]
        if architecture["classes"] is not None:
            self.classes_ = np.asarray(architecture["classes"])
        self.y_mean_, self.y_scale_ = architecture["y_mean"], architecture["y_scale"]
        self.network_ = self._network(self.n_features_in_, self.n_outputs_)
        self.network_.load_state_dict(state)
        return self

    def _outputs(self, x: Any) -> np.ndarray:
        import torch

        self.network_.eval()
        with torch.no_grad():
            out = self.network_(torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.float32))))
        return out.numpy()

    def predict(self, x: Any) -> np.ndarray:
        out = self._outputs(x)
        if self.task == "classification":
            return self.classes_[out.argmax(axis=1)]
        return out[:, 0].astype(np.float64) * self.y_scale_ + self.y_mean_

    def score(self, x: Any, y: Any) -> float:
        from sklearn.metrics import accuracy_score, r2_score

        predicted = self.predict(x)
        return float(accuracy_score(y, predicted) if self.task == "classification" else r2_score(y, predicted))
