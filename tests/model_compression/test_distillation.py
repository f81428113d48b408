"""Distillation: a student at most a quarter of the teacher's size learns from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aureon.config import CnnConfig, LogRegConfig, MlpConfig
from aureon.model_compression.distillation import (
    count_parameters,
    distill,
    distillation_loss,
    student_config,
)
from aureon.model_compression.measure import accuracy, agreement
from aureon.models import build_model


def _builder(shape):
    return lambda c: build_model(c, input_shape=shape, num_classes=10, seed=0)


@pytest.mark.parametrize(
    ("config", "shape"),
    [(MlpConfig(hidden=[128]), (1, 28, 28)), (CnnConfig(), (1, 28, 28)), (CnnConfig(), (1, 8, 8))],
)
def test_student_is_the_widest_within_the_budget(config, shape) -> None:
    build = _builder(shape)
    small = student_config(config, max_fraction=0.25, build=build)
    teacher_n, student_n = count_parameters(build(config)), count_parameters(build(small))
    assert student_n <= 0.25 * teacher_n
    assert student_n > 0.15 * teacher_n  # not needlessly small
    assert type(small) is type(config)


def test_logistic_regression_has_no_student() -> None:
    with pytest.raises(ValueError, match=r"distillation supports the models \['cnn', 'mlp'\]$"):
        student_config(LogRegConfig(), max_fraction=0.25, build=_builder((1, 8, 8)))


def test_loss_is_zero_when_the_student_copies_a_confident_teacher() -> None:
    logits = torch.tensor([[20.0, -20.0], [-20.0, 20.0]])
    labels = torch.tensor([0, 1])
    assert float(distillation_loss(logits, logits, labels, temperature=1.0, alpha=0.5)) < 1e-6


def test_distilled_student_learns_the_teacher(trained_mlp) -> None:
    build = _builder(trained_mlp.x_train.shape[1:])
    small = student_config(trained_mlp.config, max_fraction=0.25, build=build)
    student = build(small)
    before = accuracy(student, trained_mlp.x_test, trained_mlp.y_test)
    half = len(trained_mlp.y_test) // 2
    x_pub = np.concatenate([trained_mlp.x_train, trained_mlp.x_test[:half]])
    y_pub = np.concatenate([trained_mlp.y_train, trained_mlp.y_test[:half]])
    distill(trained_mlp.model, student, x_pub, y_pub, epochs=10, lr=1e-2, seed=0)
    held_x, held_y = trained_mlp.x_test[half:], trained_mlp.y_test[half:]
    after = accuracy(student, held_x, held_y)
    assert after > before + 0.3
    assert agreement(trained_mlp.model, student, held_x) > 0.9
