"""build_model: the initial weights depend on the seed alone and leave the caller's random state alone."""

from __future__ import annotations

import torch

from aureon.launch.run_config import compose_config
from aureon.models import build_model


def _weights(seed: int) -> list[torch.Tensor]:
    config = compose_config(["dataset=digits", "model=cnn"])
    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=seed)
    return [t.clone() for t in model.state_dict().values()]


def test_the_same_seed_builds_the_same_weights_and_another_seed_others() -> None:
    torch.manual_seed(123)
    first = _weights(7)
    torch.manual_seed(456)  # the caller's generator state does not leak into the model
    again = _weights(7)
    other = _weights(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_building_a_model_does_not_move_the_callers_generator() -> None:
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    _weights(7)
    assert torch.equal(torch.rand(3), expected)
