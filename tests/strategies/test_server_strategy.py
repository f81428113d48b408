"""build_server_strategy: the one place the server's wrapper stack is put together."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord
from flwr.serverapp.strategy import FedAvg

from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.models import build_model
from aureon.secagg.strategy import SecureAggregation
from aureon.strategies import build_server_strategy, strategy_chain
from aureon.tracking import PHASES, RoundLog
from tests.inprocess_grid import InProcessGrid

pytestmark = pytest.mark.usefixtures("server_identity")

BASE = ["dataset=digits", "model=logreg", "privacy=none", "num_clients=3", "train.local_epochs=1"]
EVERY_WRAPPER = ["compression=int8", "norm_bound.max_norm=5.0", "validation.max_update_norm=100"]


def _names(overrides: list[str]) -> list[str]:
    stack = build_server_strategy(compose_config([*BASE, *overrides]), round_log=RoundLog()).strategy
    return [type(part).__name__ for part in strategy_chain(stack)]


def test_the_stack_is_built_from_the_outside_in_as_the_config_asks() -> None:
    assert _names([]) == ["RoundRecorder", "UpdateValidator", "WeightCap", "FedAvg"]
    assert _names(EVERY_WRAPPER) == [
        "RoundRecorder",
        "CompressedTransport",
        "UpdateValidator",
        "WeightCap",
        "NormBounding",
        "FedAvg",
    ]
    assert _names(["secure_aggregation=secagg_plus"]) == ["RoundRecorder", "SecureAggregation", "FedAvg"]


def test_every_wrapper_reports_to_the_one_round_log() -> None:
    for overrides in (EVERY_WRAPPER, ["secure_aggregation=secagg_plus"]):
        log = RoundLog()
        stack = build_server_strategy(compose_config([*BASE, *overrides]), round_log=log).strategy
        wrappers = [part for part in strategy_chain(stack) if not isinstance(part, FedAvg)]
        assert len(wrappers) >= 2
        for part in wrappers:
            assert (part.ledger if isinstance(part, SecureAggregation) else part.round_log) is log


def test_deployment_node_counts_reach_flowers_strategy() -> None:
    config = compose_config([*BASE, "deployment.min_available_nodes=2", "deployment.min_train_nodes=1"])
    built = build_server_strategy(config, round_log=RoundLog())
    inner = list(strategy_chain(built.strategy))[-1]
    assert (built.min_available_nodes, built.min_train_nodes) == (2, 1)
    assert (inner.min_available_nodes, inner.min_train_nodes) == (2, 1)
    default = build_server_strategy(compose_config(BASE), round_log=RoundLog())
    assert (default.min_available_nodes, default.min_train_nodes) == (3, 3)


def test_the_global_model_is_read_out_of_its_record_once_for_all_wrappers(monkeypatch) -> None:
    config = compose_config([*BASE, *EVERY_WRAPPER])
    log = RoundLog()
    stack = build_server_strategy(config, round_log=log).strategy
    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=0)
    arrays = ArrayRecord(model.state_dict())
    reads = []
    original = Array.numpy

    def counted(self: Array) -> np.ndarray:
        reads.append(self)
        return original(self)

    monkeypatch.setattr(Array, "numpy", counted)
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=3)
    messages = list(stack.configure_train(1, arrays, ConfigRecord(), grid))
    assert len(messages) == 3
    assert len(reads) == len(arrays)  # validation, norm bounding and the int8 download share one copy
    shared = log.weights_sent(1)
    assert shared is not None and set(shared) == set(arrays.keys())


def test_a_run_records_where_each_rounds_time_went(tmp_path: Path) -> None:
    config = compose_config([*BASE, "num_rounds=2", "compression=int8"])
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=3)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    results = run_server(grid, config, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    for record in (*results["rounds"], *on_disk["rounds"]):
        assert set(record["phases"]) == set(PHASES)
        assert all(isinstance(s, float) and s >= 0 for s in record["phases"].values())
