"""Wire bytes come from Flower's own serialization; run directories hold what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Message, MessageType, MetricRecord, RecordDict

from aureon.tracking import ClientRound, Failure, RoundRecord, RunTracker, message_wire_bytes
from aureon.tracking.sweep_summary import summarize_sweep, write_summary


def _message(num_floats: int) -> Message:
    arrays = ArrayRecord({"w": Array(np.zeros(num_floats, dtype=np.float32))})
    content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 1})})
    return Message(content=content, dst_node_id=5, message_type=MessageType.TRAIN)


@pytest.mark.usefixtures("server_identity")
def test_wire_bytes_track_the_payload_and_include_the_overhead() -> None:
    small, large = message_wire_bytes(_message(1_000)), message_wire_bytes(_message(101_000))
    assert large - small == pytest.approx(400_000, rel=0.001)  # 100,000 more float32
    assert small > 4_000  # the array plus the envelope


@pytest.mark.usefixtures("server_identity")
def test_wire_bytes_are_the_payload_plus_a_small_envelope() -> None:
    """Independent bounds: 2,500 float32 are 10,000 bytes; Flower's envelope adds well under 2 KiB."""
    wire = message_wire_bytes(_message(2_500))
    assert 10_000 < wire < 10_000 + 2_048


def _round(n: int, accuracy: float, eps: float) -> RoundRecord:
    return RoundRecord(
        round=n,
        test_accuracy=accuracy,
        test_loss=1.0 - accuracy,
        seconds=0.5,
        clients=[ClientRound(0, 11, 100, 0.3, eps, 1000, 900), ClientRound(1, 12, 50, 0.4, eps / 2, 1000, 900)],
        failures=[Failure(13, "privacy budget spent")],
    )


def test_tracker_writes_config_results_events_plot_and_model(tmp_path: Path) -> None:
    import torch

    tracker = RunTracker(tmp_path, config_yaml="seed: 0\n", summary={"mode": "test"}, num_rounds=2)
    tracker.log_initial(0.1, 2.3)
    tracker.log_round(_round(1, 0.6, 1.0))
    mid = json.loads((tmp_path / "results.json").read_text())
    assert mid["rounds_completed"] == 1 and not mid["finished"]
    tracker.log_round(_round(2, 0.8, 1.5))
    results = tracker.finish({"w": torch.zeros(3)})

    assert results["finished"] and results["final"]["test_accuracy"] == 0.8
    assert results["final"]["epsilon_max"] == 1.5
    assert results["final"]["bytes_up_total"] == 4000
    second = results["rounds"][1]
    assert second["epsilon_per_client"] == {"0": 1.5, "1": 0.75}
    assert second["num_failures"] == 1 and second["failures"][0]["reason"] == "privacy budget spent"
    assert (tmp_path / "config.yaml").read_text() == "seed: 0\n"
    assert (tmp_path / "progress.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert torch.load(tmp_path / "model.pt")["w"].shape == (3,)


def test_sweep_summary_has_one_row_per_run(tmp_path: Path) -> None:
    for name, acc in (("0_a", 0.5), ("1_b", 0.7)):
        run = RunTracker(tmp_path / name, config_yaml="", summary={}, num_rounds=1)
        run.log_round(_round(1, acc, 2.0))
        run.finish({})
        (tmp_path / name / ".hydra").mkdir()
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(f"- seed={name[0]}\n")
    rows = summarize_sweep(tmp_path)
    write_summary(tmp_path, rows)
    assert [(r["run"], r["final_accuracy"], r["overrides"]) for r in rows] == [
        ("0_a", 0.5, "seed=0"),
        ("1_b", 0.7, "seed=1"),
    ]
    assert (tmp_path / "summary.md").read_text().splitlines()[2].startswith("| 0_a | seed=0 | 0.5000")
