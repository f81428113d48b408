"""Checkpoints round-trip the global model, FedAdam's state and the round records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.serverapp.strategy import FedAdam, FedAvgM

from aureon.federated.rounds import capture_strategy_state, restore_strategy_state
from aureon.strategies import RoundRecorder
from aureon.tracking import RoundLog
from aureon.tracking.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    round_record_from_json,
    save_checkpoint,
)
from aureon.tracking.records import ClientRound, Failure, RoundRecord


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"conv.weight": rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "bn.count": np.array(7)}
    record = RoundRecord(
        round=2, test_accuracy=0.5, test_loss=1.2, seconds=3.0,
        clients=[
            ClientRound(
                partition_id=0, node_id=9, num_examples=10, train_loss=0.3, epsilon=1.1, bytes_up=5, bytes_down=6
            )
        ],
        failures=[Failure(node_id=8, reason="no reply")],
    )
    saved = Checkpoint(
        round=2, run_key="abc", arrays=arrays,
        strategy_state={"1.m_t": {"w": np.ones(3)}, "1.momentum_vector": [np.zeros(2)]},
        rounds=[record.to_json()], initial={"test_accuracy": 0.1, "test_loss": 2.3}, identity={"seed": 3},
    )
    save_checkpoint(tmp_path, saved)
    loaded = load_checkpoint(tmp_path)
    assert (loaded.round, loaded.run_key, loaded.identity, loaded.initial) == (2, "abc", {"seed": 3}, saved.initial)
    assert list(loaded.arrays) == list(arrays)
    for name in arrays:
        np.testing.assert_array_equal(loaded.arrays[name], arrays[name])
        assert loaded.arrays[name].dtype == arrays[name].dtype
    np.testing.assert_array_equal(loaded.strategy_state["1.m_t"]["w"], np.ones(3))
    assert isinstance(loaded.strategy_state["1.momentum_vector"], list)
    back = round_record_from_json(loaded.rounds[0])
    assert back == record and back.epsilon_max == pytest.approx(1.1)
    assert loaded.array_record().to_torch_state_dict()["conv.weight"].shape == (4, 1, 3, 3)
    assert not (tmp_path / "checkpoint.npz.tmp").exists()


def test_fedadam_state_survives_capture_and_restore() -> None:
    first = RoundRecorder(FedAdam(), round_log=RoundLog())
    first.inner.m_t = {"w": np.array([0.1, 0.2])}
    first.inner.v_t = {"w": np.array([0.01, 0.04])}
    state = capture_strategy_state(first)
    assert set(state) == {"1.m_t", "1.v_t"}
    second = RoundRecorder(FedAdam(), round_log=RoundLog())
    restore_strategy_state(second, state)
    np.testing.assert_array_equal(second.inner.v_t["w"], [0.01, 0.04])
    with pytest.raises(ValueError, match="has no attribute 'm_t'"):
        restore_strategy_state(RoundRecorder(FedAvgM(), round_log=RoundLog()), {"1.m_t": {"w": np.zeros(1)}})


def test_missing_checkpoint_is_explained(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="has no checkpoint.npz"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path)
