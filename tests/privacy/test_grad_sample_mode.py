"""privacy.grad_sample_mode: auto picks ghost clipping where it applies, and it is the same DP-SGD."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch import nn

from aureon.config import DpSgdConfig, TrainConfig
from aureon.exceptions import ConfigError
from aureon.models import MLP, FeatureLinear, LogisticRegression, SmallCNN
from aureon.privacy import plan_dp
from aureon.privacy.accounting import create_accountant
from aureon.privacy.ledger import PrivacyLedger
from aureon.privacy.private_training import (
    PrivateParts,
    PrivateTraining,
    choose_grad_sample_mode,
    grad_sample_mode_record,
)
from aureon.training import train_model

INPUT_SHAPE = (27, 3, 3)


def feature_linear() -> nn.Module:
    torch.manual_seed(0)
    return FeatureLinear(input_shape=INPUT_SHAPE, num_classes=4, groups=9)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return MLP(input_shape=INPUT_SHAPE, num_classes=4, hidden=(16,))


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, *INPUT_SHAPE)).astype(np.float32) * 3
    return x, rng.integers(0, 4, size=n).astype(np.int64)


def private(mode: str, *, n: int, batch_size: int, noise_seed: int = 11) -> PrivateTraining:
    # a small clipping norm, so that clipping binds on most examples
    plan = plan_dp(
        DpSgdConfig(grad_sample_mode=mode, max_grad_norm=0.3),
        num_examples=n,
        batch_size=batch_size,
        local_epochs=1,
        num_rounds=3,
    )
    return PrivateTraining(plan=plan, noise_seed=noise_seed)


def train(model: nn.Module, mode: str, *, n: int, batch_size: int, noise_seed: int = 11) -> nn.Module:
    x, y = data(n)
    config = TrainConfig(local_epochs=2, batch_size=batch_size, lr=0.5, momentum=0.5, weight_decay=0.0)
    train_model(
        model, x, y, config=config, seed=0, private=private(mode, n=n, batch_size=batch_size, noise_seed=noise_seed)
    )
    return model


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        (feature_linear(), "ghost"),
        (mlp(), "ghost"),
        (LogisticRegression(input_shape=INPUT_SHAPE, num_classes=4), "ghost"),
        (SmallCNN(input_shape=(1, 12, 12), num_classes=4), "hooks"),
    ],
)
def test_auto_picks_ghost_clipping_only_where_every_trainable_layer_supports_it(model: nn.Module, mode: str) -> None:
    assert choose_grad_sample_mode("auto", model) == mode
    assert choose_grad_sample_mode("functorch", model) == "functorch"
    assert grad_sample_mode_record(DpSgdConfig(), model) == {"grad_sample_mode": mode}


@pytest.mark.parametrize("build", [feature_linear, mlp])
@pytest.mark.parametrize(
    ("n", "batch_size"),
    [(24, 24), (96, 16), (40, 1)],  # one step per epoch; several; mostly empty Poisson batches
)
def test_ghost_clipping_gives_the_same_noised_updates_as_hooks(build, n: int, batch_size: int) -> None:
    hooks = train(build(), "hooks", n=n, batch_size=batch_size)
    ghost = train(build(), "auto", n=n, batch_size=batch_size)
    start = build()
    for (name, a), b, before in zip(
        hooks.state_dict().items(), ghost.state_dict().values(), start.state_dict().values(), strict=True
    ):
        assert not torch.equal(a, before), name  # it trained
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


def test_the_local_generator_drives_ghost_clippings_noise_and_batches(monkeypatch) -> None:
    seen: list[PrivateParts] = []
    detach = PrivateTraining.detach
    monkeypatch.setattr(PrivateTraining, "detach", staticmethod(lambda parts: (seen.append(parts), detach(parts))))
    first = train(mlp(), "auto", n=96, batch_size=16, noise_seed=3)
    parts = seen[-1]
    assert parts.grad_sample_mode == "ghost"
    assert isinstance(parts.optimizer, DPOptimizerFastGradientClipping)
    assert parts.optimizer.generator is parts.generator
    assert parts.loader.batch_sampler.generator is parts.generator
    # the same seed repeats the run exactly; another seed gives other noise
    again = train(mlp(), "auto", n=96, batch_size=16, noise_seed=3)
    other = train(mlp(), "auto", n=96, batch_size=16, noise_seed=4)
    for a, b, c in zip(first.parameters(), again.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
        assert not torch.allclose(a, c)


def test_opacus_counts_the_same_steps_in_both_modes_as_the_ledger_charges(monkeypatch) -> None:
    histories: dict[str, list] = {}
    detach = PrivateTraining.detach

    def record(parts: PrivateParts) -> None:
        histories[parts.grad_sample_mode] = list(parts.accountant.history)
        detach(parts)

    monkeypatch.setattr(PrivateTraining, "detach", staticmethod(record))
    x, y = data(90)
    config = TrainConfig(local_epochs=1, batch_size=15, lr=0.5, momentum=0.0, weight_decay=0.0)
    for mode in ("hooks", "auto"):
        training = private(mode, n=90, batch_size=15)
        result = train_model(mlp(), x, y, config=config, seed=0, private=training)
        assert result.steps == training.plan.steps_per_round == 6
    plan = training.plan
    assert histories["hooks"] == histories["ghost"] == [(plan.noise_multiplier, plan.sample_rate, 6)]
    ledger = training.charge(PrivacyLedger(data="d"), run="r", server_round=1)
    opacus_steps = create_accountant("rdp")
    opacus_steps.history = histories["ghost"]
    assert training.epsilon(ledger) == opacus_steps.get_epsilon(delta=plan.target_delta)


def test_detach_leaves_the_plain_model() -> None:
    model = train(mlp(), "auto", n=48, batch_size=16)
    assert all(not key.startswith("_module.") for key in model.state_dict())
    assert not any(module._forward_hooks or module._backward_hooks for module in model.modules())
    for param in model.parameters():
        for attribute in ("_norm_sample", "grad_sample", "_forward_counter", "summed_grad"):
            assert not hasattr(param, attribute), attribute


def test_train_result_names_the_mode_used() -> None:
    x, y = data(32)
    config = TrainConfig(local_epochs=1, batch_size=16)
    plan = private("auto", n=32, batch_size=16).plan
    assert (
        train_model(mlp(), x, y, config=config, seed=0, private=PrivateTraining(plan=plan)).grad_sample_mode == "ghost"
    )
    hooks = PrivateTraining(plan=replace(plan, grad_sample_mode="hooks"))
    assert train_model(mlp(), x, y, config=config, seed=0, private=hooks).grad_sample_mode == "hooks"
    assert train_model(mlp(), x, y, config=config, seed=0).grad_sample_mode is None


def test_an_unknown_mode_is_refused_naming_the_field() -> None:
    with pytest.raises(
        ConfigError,
        match=r"privacy.grad_sample_mode must be one of 'auto', 'hooks', "
        r"'ghost', 'functorch', got 'ew'",
    ):
        DpSgdConfig(grad_sample_mode="ew").validate()
