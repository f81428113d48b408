"""Fault injection: what a Byzantine client sends instead of its trained weights."""

from __future__ import annotations

import numpy as np

from aureon.config import FaultsConfig
from aureon.federated.faults import corrupt_weights

RECEIVED = {"w": np.array([1.0, 2.0], dtype=np.float32), "steps": np.array([3], dtype=np.int64)}
TRAINED = {"w": np.array([1.5, 1.0], dtype=np.float32), "steps": np.array([4], dtype=np.int64)}


def test_sign_flip_sends_the_update_reversed_and_scaled() -> None:
    sent = corrupt_weights(TRAINED, RECEIVED, faults=FaultsConfig(mode="sign_flip", scale=4.0))
    assert np.allclose(sent["w"], [1.0 - 4 * 0.5, 2.0 + 4 * 1.0]) and sent["w"].dtype == np.float32
    assert np.array_equal(sent["steps"], TRAINED["steps"])  # integer tensors are left alone


def test_scale_sends_the_update_amplified() -> None:
    sent = corrupt_weights(TRAINED, RECEIVED, faults=FaultsConfig(mode="scale", scale=10.0))
    assert np.allclose(sent["w"], [1.0 + 10 * 0.5, 2.0 - 10 * 1.0])
