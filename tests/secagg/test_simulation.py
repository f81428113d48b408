"""Secure aggregation in Flower's Simulation Engine (Ray), end to end."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from aureon.data import load_dataset
from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.launch.simulation import run_experiment
from aureon.secagg import sum_error_bound
from tests.inprocess_grid import InProcessGrid

# training is pinned: the figures must not move with conf/config.yaml
BASE = [
    "dataset=digits",
    "features=none",
    "model=logreg",
    "privacy=none",
    "num_clients=5",
    "num_rounds=1",
    "train.local_epochs=2",
    "train.batch_size=64",
    "train.lr=0.5",
    "train.momentum=0.5",
    "train.lr_decay=1.0",
]


@pytest.mark.integration
@pytest.mark.usefixtures("server_identity")
def test_secagg_simulation_learns_and_matches_plain_fedavg_within_the_bound(tmp_path: Path) -> None:
    config = compose_config(BASE + ["secure_aggregation=secagg_plus"])
    results = run_experiment(config, tmp_path / "secure")
    assert results["finished"] and results["secure_aggregation"] == "secagg_plus"
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.5
    (record,) = results["rounds"]
    assert record["aggregation_error"] is None and len(record["clients"]) == 5

    # plain FedAvg on the same clients (deterministic training), without Ray
    plain_config = compose_config(BASE)
    grid = InProcessGrid(make_client_app(lambda _ctx: plain_config), num_nodes=5)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    run_server(grid, plain_config, tmp_path / "plain")

    secure = config.secure_aggregation
    total = len(load_dataset(config.dataset, config.seed).y_train)
    bound = sum_error_bound(count=5, clipping_range=secure.clipping_range, bits=secure.quantization_bits)
    bound *= secure.max_weight / total
    models = [torch.load(tmp_path / run / "model.pt") for run in ("secure", "plain")]
    difference = max(float(np.max(np.abs((models[0][k] - models[1][k]).numpy()))) for k in models[0])
    assert difference <= bound + 1e-6
