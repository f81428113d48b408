"""The round log: one round's record from the request to results.json, its phases, and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Message, MessageType, MetricRecord, RecordDict

from aureon.tracking import PHASES, PhaseClock, RoundLog, RunTracker, SentWeights, message_wire_bytes
from aureon.tracking.checkpoint import (
    CheckpointError,
    load_checkpoint,
    round_record_from_json,
    save_checkpoint,
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_a_nested_phase_is_counted_once_and_the_phases_add_up() -> None:
    clock = FakeClock()
    phases = PhaseClock(clock=clock)
    with phases.phase("aggregate"):
        clock.tick(1.0)
        with phases.phase("serialize"):
            clock.tick(0.25)
            with phases.phase("count_bytes"):
                clock.tick(0.5)
        clock.tick(2.0)
    with phases.phase("aggregate"):
        clock.tick(0.125)
    assert phases.seconds == {"aggregate": 3.125, "serialize": 0.25, "count_bytes": 0.5}
    assert sum(phases.seconds.values()) == clock.now - 100.0


def test_an_unknown_phase_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown round phase 'waiting'; expected one of \['configure'"):
        with PhaseClock().phase("waiting"):
            pass


def test_the_sent_weights_are_read_once_per_round_and_cannot_be_changed_by_a_reader() -> None:
    sent = SentWeights()
    arrays = ArrayRecord({"w": Array(np.arange(4, dtype=np.float32))})
    first = sent.take(1, arrays)
    assert sent.take(1, arrays) is first and sent.of(1) is first
    with pytest.raises(ValueError, match="read-only"):
        first["w"][0] = 9.0
    later = ArrayRecord({"w": Array(np.ones(4, dtype=np.float32))})
    assert sent.take(2, later)["w"].tolist() == [1.0] * 4
    assert sent.of(1) is None  # only the latest round is kept


def _train_message(node_id: int, floats: int) -> Message:
    arrays = ArrayRecord({"w": Array(np.zeros(floats, dtype=np.float32))})
    return Message(RecordDict({"arrays": arrays}), dst_node_id=node_id, message_type=MessageType.TRAIN)


def _reply(to: Message, floats: int) -> Message:
    arrays = ArrayRecord({"w": Array(np.zeros(floats, dtype=np.float32))})
    return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 3})}), reply_to=to)


@pytest.mark.usefixtures("server_identity")
def test_everything_reported_about_a_round_lands_in_its_record() -> None:
    clock = FakeClock()
    log = RoundLog(clock=clock)
    log.fail(2, node_id=5, reason="sits out round 2")  # reported while round 1 is still running
    log.begin(1)
    sent = [_train_message(7, 100), _train_message(8, 100)]
    log.sent_train(1, sent)
    log.fail(1, node_id=9, reason="no reply within the round timeout (5 s)")
    log.replied(1, _reply(sent[0], 50), partition_id=0, num_examples=3, train_loss=0.5, epsilon=1.25)
    log.reply_failed(1, node_id=8, reason="client crashed")
    log.reject(1, node_id=7, stage="update-validation", reason="NaN")
    log.cap(1, node_id=7, declared=1e9, used=1000.0)
    protocol = _train_message(7, 10)
    log.add_traffic(1, node_id=7, message=protocol, upstream=True)
    log.abort(1, "first reason")
    log.abort(1, "a consequence")
    clock.tick(4.0)
    record = log.evaluated(1, test_accuracy=0.75, test_loss=0.5)

    assert record is not None and record.seconds == 4.0
    (client,) = record.clients
    assert client.bytes_up == message_wire_bytes(_reply(sent[0], 50)) + message_wire_bytes(protocol)
    assert client.bytes_down == message_wire_bytes(sent[0])
    assert (client.partition_id, client.num_examples, client.epsilon) == (0, 3, 1.25)
    # error replies first, then nodes that never answered, as results.json always listed them
    assert [(f.node_id, f.reason) for f in record.failures] == [
        (8, "client crashed"),
        (9, "no reply within the round timeout (5 s)"),
    ]
    assert [r.reason for r in record.rejected] == ["NaN"] and record.capped[0].used == 1000.0
    assert record.aggregation_error == "first reason"
    assert set(record.phases) == set(PHASES) - {"checkpoint"}  # the checkpoint comes after
    with log.phase(1, "checkpoint"):
        clock.tick(0.0)
    assert set(record.phases) == set(PHASES)
    assert log.close(1) is record
    log.begin(2)
    assert [f.reason for f in log.events(2).failures] == ["sits out round 2"]


def test_a_round_is_not_closed_before_it_is_evaluated() -> None:
    log = RoundLog()
    log.begin(3)
    with pytest.raises(RuntimeError, match="round 3 cannot be closed before it is evaluated"):
        log.close(3)


def _tracker(run_dir: Path) -> RunTracker:
    return RunTracker(run_dir, config_yaml="seed: 0\n", summary={"mode": "test"}, num_rounds=3)


def _play_round(log: RoundLog, server_round: int, accuracy: float) -> None:
    log.begin(server_round)
    with log.phase(server_round, "train"):
        pass
    with log.phase(server_round, "evaluate"):
        log.evaluated(server_round, test_accuracy=accuracy, test_loss=1 - accuracy)
    with log.phase(server_round, "checkpoint"):
        checkpoint = log.to_checkpoint(
            server_round=server_round, run_key="key", arrays={"w": np.zeros(2)}, strategy_state={}, identity={}
        )
        assert log.tracker is not None
        save_checkpoint(log.tracker.run_dir, checkpoint)
    log.close(server_round)


def test_a_restored_log_continues_the_rounds_of_the_checkpoint(tmp_path: Path) -> None:
    first = RoundLog(_tracker(tmp_path / "run"))
    first.evaluated(0, test_accuracy=0.1, test_loss=2.0)
    _play_round(first, 1, 0.5)
    _play_round(first, 2, 0.6)
    checkpoint = load_checkpoint(tmp_path / "run")
    assert [r["round"] for r in checkpoint.rounds] == [1, 2]  # the round being saved is in its own checkpoint
    assert "checkpoint" in checkpoint.rounds[0]["phases"] and "checkpoint" not in checkpoint.rounds[1]["phases"]

    resumed = RoundLog(_tracker(tmp_path / "run"))
    resumed.restore(checkpoint, source=str(tmp_path / "run"))
    _play_round(resumed, 3, 0.7)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [r["round"] for r in results["rounds"]] == [1, 2, 3]
    assert [r["test_accuracy"] for r in results["rounds"]] == [0.5, 0.6, 0.7]
    assert results["initial"] == {"test_accuracy": 0.1, "test_loss": 2.0}
    assert set(results["rounds"][2]["phases"]) == set(PHASES)


def test_round_records_of_checkpoints_without_phases_still_restore() -> None:
    old = {"round": 1, "test_accuracy": 0.5, "test_loss": 1.0, "seconds": 2.0, "clients": [], "failures": []}
    assert round_record_from_json(old).phases == {}
    with pytest.raises(ValueError, match="phases must map phase names to seconds"):
        round_record_from_json({**old, "phases": {"train": "slow"}})


def test_a_checkpoint_with_malformed_phases_is_refused_naming_the_record(tmp_path: Path) -> None:
    log = RoundLog(_tracker(tmp_path))
    checkpoint = log.to_checkpoint(server_round=1, run_key="k", arrays={}, strategy_state={}, identity={})
    checkpoint.rounds = [{"round": 1, "test_accuracy": 0.5, "test_loss": 1.0, "seconds": 2.0, "phases": [1.0]}]
    save_checkpoint(tmp_path, checkpoint)
    with pytest.raises(CheckpointError, match="round record 0 is malformed"):
        load_checkpoint(tmp_path)


def test_without_a_run_directory_there_is_nothing_to_restore() -> None:
    with pytest.raises(RuntimeError, match="without a run directory"):
        RoundLog().to_checkpoint(server_round=1, run_key="k", arrays={}, strategy_state={}, identity={})
