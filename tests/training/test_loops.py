"""The one train loop: plain SGD, DP-SGD through PrivateTraining (ghost or hooks), FedProx's pull."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from aureon.config import DpSgdConfig, TrainConfig
from aureon.models import MLP
from aureon.privacy import plan_dp
from aureon.privacy.private_training import PrivateTraining
from aureon.training import evaluate_model, train_model


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated classes in 8 dimensions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, 8)).astype(np.float32) + (2.0 * y[:, None] - 1.0).astype(np.float32) * 1.5
    return x, y.astype(np.int64)


def model() -> nn.Module:
    torch.manual_seed(0)
    return MLP(input_shape=(8,), num_classes=2, hidden=(8,))


def distance(a: nn.Module, b: nn.Module) -> float:
    return math.sqrt(sum(float(((p - q) ** 2).sum()) for p, q in zip(a.parameters(), b.parameters(), strict=True)))


def test_plain_training_learns_and_repeats_with_its_seed() -> None:
    x, y = blobs(200)
    config = TrainConfig(local_epochs=3, batch_size=20, lr=0.1, momentum=0.0, weight_decay=0.0)
    first, second = model(), model()
    before = evaluate_model(first, x, y)
    result = train_model(first, x, y, config=config, seed=5)
    train_model(second, x, y, config=config, seed=5)
    assert result.steps == 3 * 10 and result.num_examples == 200
    assert evaluate_model(first, x, y).accuracy > max(0.9, before.accuracy)
    assert all(torch.equal(p, q) for p, q in zip(first.parameters(), second.parameters(), strict=True))


@pytest.mark.parametrize("mode", ["auto", "hooks"])
def test_every_poisson_batch_is_a_step_even_an_empty_one(mode: str) -> None:
    x, y = blobs(30)
    config = TrainConfig(local_epochs=2, batch_size=1, lr=0.1, momentum=0.0, weight_decay=0.0)
    plan = plan_dp(DpSgdConfig(grad_sample_mode=mode), num_examples=30, batch_size=1, local_epochs=2, num_rounds=1)
    result = train_model(model(), x, y, config=config, seed=0, private=PrivateTraining(plan=plan, noise_seed=1))
    # sample rate 1/30: about a third of the 60 batches are empty, and each is still a noised step
    assert result.steps == plan.steps_per_round == 60
    assert math.isfinite(result.mean_loss) and result.mean_loss > 0


def test_the_proximal_pull_works_under_ghost_clipping() -> None:
    x, y = blobs(120)
    config = TrainConfig(local_epochs=2, batch_size=20, lr=0.5, momentum=0.0, weight_decay=0.0)
    plan = plan_dp(DpSgdConfig(), num_examples=120, batch_size=20, local_epochs=2, num_rounds=1)
    anchor, free, pulled = model(), model(), model()
    for trained, mu in ((free, 0.0), (pulled, 1.0)):
        result = train_model(
            trained, x, y, config=config, seed=0, proximal_mu=mu, private=PrivateTraining(plan=plan, noise_seed=2)
        )
        assert result.grad_sample_mode == "ghost"
    assert distance(pulled, anchor) < 0.8 * distance(free, anchor)


def test_evaluation_counts_correct_predictions_and_mean_cross_entropy() -> None:
    linear = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]], dtype=np.float32)
    y = np.array([0, 1, 1], dtype=np.int64)
    result = evaluate_model(linear, x, y, batch_size=2)
    assert result.accuracy == pytest.approx(2 / 3)
    right, wrong = math.log(1 + math.exp(-2)), math.log(1 + math.exp(2))
    assert result.loss == pytest.approx((2 * right + wrong) / 3, rel=1e-6)
