"""A compressed federated run end to end in Flower's Simulation Engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon.launch.run_config import compose_config
from aureon.launch.simulation import run_experiment


@pytest.mark.integration
def test_int8_run_learns_and_records_fewer_bytes_each_way(tmp_path: Path) -> None:
    config = compose_config(
        ["dataset=digits", "features=none", "model=cnn", "num_clients=2", "num_rounds=2", "train.batch_size=32",
         "train.local_epochs=1", "train.lr=0.05", "train.momentum=0.9", "train.lr_decay=1.0", "compression=int8"]
    )
    results = run_experiment(config, tmp_path)
    assert results["finished"] and results["compression"]["upload"] == "int8"
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.1
    from aureon.models import build_model

    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=0)
    float32_bytes = 4 * sum(p.numel() for p in model.parameters())
    for record in results["rounds"]:
        for client in record["clients"]:
            assert 0 < client["bytes_up"] < float32_bytes / 3.5
            assert 0 < client["bytes_down"] < float32_bytes / 3.5
