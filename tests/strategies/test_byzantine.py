"""One Byzantine client of five: robust aggregation holds the accuracy, FedAvg does not.

Client 0 sends global - 4 * (its update) every round (faults.mode=sign_flip,
faults.scale=4). Five rounds on scikit-learn's digits with logistic regression
(two local epochs, batch 64, SGD lr 0.5, momentum 0.5);
the real ServerApp and ClientApp code runs with an in-process transport.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from tests.inprocess_grid import InProcessGrid

BASE = ["dataset=digits", "features=none", "model=logreg", "privacy=none", "num_clients=5", "num_rounds=5"]
# pinned, so that changes to conf/config.yaml's training defaults do not move the figures
TRAIN = ["train.local_epochs=2", "train.batch_size=64", "train.lr=0.5", "train.momentum=0.5", "train.lr_decay=1.0"]
ATTACK = ["faults.byzantine_partitions=[0]", "faults.mode=sign_flip", "faults.scale=4"]


def _final_accuracy(overrides: list[str], run_dir: Path) -> float:
    config = compose_config(BASE + TRAIN + overrides)
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=config.num_clients)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    return float(run_server(grid, config, run_dir)["final"]["test_accuracy"])


@pytest.mark.integration
@pytest.mark.usefixtures("server_identity")
def test_robust_aggregators_keep_the_clean_accuracy_under_a_sign_flipping_client(tmp_path: Path) -> None:
    clean = _final_accuracy([], tmp_path / "clean")
    attacked = _final_accuracy(ATTACK, tmp_path / "fedavg")
    robust = {
        name: _final_accuracy([f"strategy={name}", *ATTACK], tmp_path / name)
        for name in ("fedmedian", "krum", "multikrum", "fedtrimmedavg")
    }
    bounded = _final_accuracy(["norm_bound.max_norm=2.0", *ATTACK], tmp_path / "norm_bound")
    print(f"clean FedAvg {clean:.4f}; attacked FedAvg {attacked:.4f}; attacked {robust}; ", end="")
    print(f"attacked FedAvg with norm_bound.max_norm=2 {bounded:.4f}")

    assert clean > 0.9
    assert attacked < clean - 0.2
    for name, accuracy in robust.items():
        assert accuracy >= clean - 0.02, name
