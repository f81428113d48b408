"""A small model trained for real on scikit-learn's digits, shared by the model-compression tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from torch import nn

from aureon.config import CnnConfig, DigitsConfig, MlpConfig, ModelConfig, TrainConfig
from aureon.data import load_dataset
from aureon.models import build_model
from aureon.training import train_model


@dataclass(frozen=True)
class Trained:
    model: nn.Module
    config: ModelConfig
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="module")
def trained_mlp() -> Trained:
    """An MLP (64-128-10) trained a few epochs on digits: ~95% test accuracy in about a second."""
    data = load_dataset(DigitsConfig(), seed=0)
    config = MlpConfig(hidden=[128])
    model = build_model(config, input_shape=data.input_shape, num_classes=10, seed=0)
    train_model(
        model, data.x_train, data.y_train,
        config=TrainConfig(local_epochs=8, batch_size=32, lr=0.05, momentum=0.9), seed=0,
    )
    return Trained(model.eval(), config, data.x_train, data.y_train, data.x_test, data.y_test)


@pytest.fixture(scope="module")
def trained_cnn() -> Trained:
    """The small tanh CNN trained a few epochs on digits (8x8: 3x3 convolutions)."""
    data = load_dataset(DigitsConfig(), seed=0)
    config = CnnConfig()
    model = build_model(config, input_shape=data.input_shape, num_classes=10, seed=0)
    train_model(
        model, data.x_train, data.y_train,
        config=TrainConfig(local_epochs=8, batch_size=32, lr=0.05, momentum=0.9), seed=0,
    )
    return Trained(model.eval(), config, data.x_train, data.y_train, data.x_test, data.y_test)
