"""The regression path: MSE on a one-output head, R^2 as the score, chosen by the dataset's task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_squared_error, r2_score

from aureon.config import DpSgdConfig, TrainConfig
from aureon.data import Dataset
from aureon.models import MLP, LogisticRegression
from aureon.privacy import plan_dp
from aureon.privacy.private_training import PrivateTraining
from aureon.training import evaluate_model, train_model
from aureon.training.objectives import Classification, Regression, RegressionLoss, objective_for


def linear_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 1.5], dtype=np.float32) + 0.1 * rng.normal(size=n).astype(np.float32)
    return x, y.astype(np.float32)


def test_the_dataset_task_picks_the_objective() -> None:
    x, y = linear_data(10)
    regression = Dataset(x, y, x, y, num_classes=1, task="regression")
    assert isinstance(regression.objective(), Regression) and regression.objective().metric == "r2"
    classes = Dataset(x, (y > 0).astype(np.int64), x, (y > 0).astype(np.int64), num_classes=2)
    assert isinstance(classes.objective(), Classification)
    with pytest.raises(ValueError, match="'ranking'"):
        objective_for("ranking")


def test_r2_over_batches_equals_scikit_learn() -> None:
    x, y = linear_data(101)
    model = LogisticRegression(input_shape=(5,), num_classes=1)  # one output: linear regression
    predictions = model(torch.from_numpy(x)).detach().numpy()[:, 0]
    result = evaluate_model(model, x, y, batch_size=7, objective=Regression())
    assert result.metric == "r2" and result.num_examples == 101
    assert result.score == pytest.approx(r2_score(y, predictions), rel=1e-6)
    assert result.loss == pytest.approx(mean_squared_error(y, predictions), rel=1e-5)
    with pytest.raises(ValueError, match="not accuracy"):
        _ = result.accuracy


def test_the_regression_loss_flattens_the_head_and_gives_per_sample_losses() -> None:
    outputs, targets = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([1.0, 1.0, 1.0])
    assert float(RegressionLoss()(outputs, targets)) == pytest.approx((0 + 1 + 9) / 3)
    assert RegressionLoss(reduction="none")(outputs, targets).shape == (3,)  # what ghost clipping asks for


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(input_shape=(5,), num_classes=1),
        lambda: MLP(input_shape=(5,), num_classes=1, hidden=(16,)),
    ],
)
def test_plain_training_fits_a_linear_target(make) -> None:
    x, y = linear_data(400)
    torch.manual_seed(0)
    model = make()
    config = TrainConfig(local_epochs=20, batch_size=32, lr=0.05, momentum=0.0, weight_decay=0.0)
    before = evaluate_model(model, x, y, objective=Regression()).score
    train_model(model, x, y, config=config, seed=0, criterion=Regression().criterion())
    after = evaluate_model(model, x, y, objective=Regression()).score
    assert after > max(0.9, before)


@pytest.mark.parametrize("mode", ["auto", "hooks"])
def test_dp_sgd_trains_a_regression_head(mode: str) -> None:
    x, y = linear_data(600)
    config = TrainConfig(local_epochs=10, batch_size=64, lr=0.5, momentum=0.0, weight_decay=0.0)
    plan = plan_dp(
        DpSgdConfig(grad_sample_mode=mode, target_epsilon=8.0),
        num_examples=600,
        batch_size=64,
        local_epochs=10,
        num_rounds=1,
    )
    torch.manual_seed(0)
    model = LogisticRegression(input_shape=(5,), num_classes=1)
    private = PrivateTraining(plan=plan, noise_seed=3)
    result = train_model(model, x, y, config=config, seed=0, private=private, criterion=Regression().criterion())
    assert result.steps == plan.steps_per_round and np.isfinite(result.mean_loss)
    assert evaluate_model(model, x, y, objective=Regression()).score > 0.8


def test_classification_evaluation_is_unchanged_by_the_objective() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=50).astype(np.int64)
    model = LogisticRegression(input_shape=(5,), num_classes=3)
    logits = model(torch.from_numpy(x))
    result = evaluate_model(model, x, y, batch_size=8)
    assert result.metric == "accuracy" and result.accuracy == result.score
    assert result.score == float((logits.argmax(1).numpy() == y).mean())
    expected = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)))
    assert result.loss == pytest.approx(expected, rel=1e-6)
