"""SecureAggregation + the ClientApp's stage handlers, run through run_server in one process.

The transport is a function call (tests/inprocess_grid.py); everything else is
the code a Flower simulation or deployment runs. A Ray simulation of the same
path is in tests/secagg/test_simulation.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, Message, RecordDict

from aureon import keys
from aureon.config import AureonConfig
from aureon.data import load_dataset
from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.secagg import sum_error_bound
from tests.inprocess_grid import InProcessGrid, Intercept

pytestmark = pytest.mark.usefixtures("server_identity")

# training is pinned: the figures must not move with conf/config.yaml
BASE = [
    "dataset=digits",
    "features=none",
    "model=logreg",
    "privacy=none",
    "num_clients=5",
    "train.local_epochs=2",
    "train.batch_size=64",
    "train.lr=0.5",
    "train.momentum=0.5",
    "train.lr_decay=1.0",
]
SECAGG = ["secure_aggregation=secagg_plus"]


def _run(
    overrides: list[str], run_dir: Path, intercept: Intercept | None = None, *, base: list[str] = BASE
) -> tuple[dict, InProcessGrid]:
    config = compose_config(base + overrides)
    app = make_client_app(lambda _ctx: config)
    grid = InProcessGrid(app, num_nodes=config.num_clients, intercept=intercept)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    return run_server(grid, config, run_dir), grid


def _model(run_dir: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in torch.load(run_dir / "model.pt").items()}


def _mean_bound(config: AureonConfig, total_weight: int, count: int) -> float:
    secure = config.secure_aggregation
    bound = sum_error_bound(count=count, clipping_range=secure.clipping_range, bits=secure.quantization_bits)
    return bound * secure.max_weight / total_weight


def _drop(message_type: str, nodes: set[int]) -> Intercept:
    def intercept(message: Message, reply: Message) -> Message | None:
        hit = message.metadata.message_type == message_type and message.metadata.dst_node_id in nodes
        return None if hit else reply

    return intercept


def test_secure_round_equals_plain_fedavg_within_the_quantization_bound(tmp_path: Path) -> None:
    plain, _ = _run(["num_rounds=1"], tmp_path / "plain")
    secure, grid = _run(SECAGG + ["num_rounds=1"], tmp_path / "secure")

    config = compose_config(BASE + SECAGG)
    total = len(load_dataset(config.dataset, config.seed).y_train)
    bound = _mean_bound(config, total, count=5)
    plain_model, secure_model = _model(tmp_path / "plain"), _model(tmp_path / "secure")
    difference = max(np.max(np.abs(plain_model[k] - secure_model[k])) for k in plain_model)
    assert difference <= bound + 1e-6  # plus float32 rounding of the two averages
    assert secure["final"]["test_accuracy"] > secure["initial"]["test_accuracy"] + 0.5
    assert secure["secure_aggregation"] == "secagg_plus"

    types = {m.metadata.message_type for m in grid.sent}
    assert {keys.SECAGG_SETUP, keys.SECAGG_SHARE_KEYS, keys.SECAGG_TRAIN, keys.SECAGG_UNMASK} <= types
    (record,) = secure["rounds"]
    assert record["aggregation_error"] is None and record["rejected"] == []
    assert all(c["num_examples"] is None for c in record["clients"])  # weights stay secret
    (plain_record,) = plain["rounds"]
    assert record["bytes_up_total"] > plain_record["bytes_up_total"]  # the protocol's traffic counts


def test_a_client_dropping_after_its_masked_input_still_counts(tmp_path: Path) -> None:
    config = compose_config(BASE)
    victim = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5).node_ids[1]
    results, _ = _run(SECAGG + ["num_rounds=2"], tmp_path, intercept=_drop(keys.SECAGG_UNMASK, {victim}))
    for record in results["rounds"]:
        assert record["aggregation_error"] is None
        assert len(record["clients"]) == 5
    assert results["final"]["test_accuracy"] > 0.85


def test_two_clients_dropping_before_masking_leave_the_survivors_mean(tmp_path: Path) -> None:
    config = compose_config(BASE)
    nodes = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5).node_ids
    dropped = {nodes[0], nodes[3]}
    overrides = [*SECAGG, "num_rounds=1", "deployment.min_train_nodes=3"]  # let a round with dropouts through
    results, _ = _run(overrides, tmp_path, intercept=_drop(keys.SECAGG_TRAIN, dropped))
    (record,) = results["rounds"]
    assert record["aggregation_error"] is None
    assert sorted(c["node_id"] for c in record["clients"]) == sorted([nodes[1], nodes[2], nodes[4]])
    assert results["final"]["test_accuracy"] > 0.8


def test_below_threshold_the_round_keeps_the_model_and_says_why(tmp_path: Path) -> None:
    config = compose_config(BASE)
    nodes = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5).node_ids
    overrides = [*SECAGG, "num_rounds=1", "deployment.min_train_nodes=2"]  # the protocol must refuse
    results, _ = _run(overrides, tmp_path, intercept=_drop(keys.SECAGG_TRAIN, set(nodes[:3])))
    (record,) = results["rounds"]
    assert "below the threshold 3" in record["aggregation_error"]
    assert not results["finished"] and "below the threshold 3" in results["reason"]  # its only round made none
    assert record["test_accuracy"] == results["initial"]["test_accuracy"]


def test_a_malformed_protocol_reply_is_rejected_and_recorded(tmp_path: Path) -> None:
    config = compose_config(BASE)
    victim = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5).node_ids[2]

    def garble(message: Message, reply: Message) -> Message | None:
        if message.metadata.message_type == keys.SECAGG_SHARE_KEYS and message.metadata.dst_node_id == victim:
            reply.content = RecordDict({keys.SECAGG: ConfigRecord({"round": "one"})})
        return reply

    results, _ = _run([*SECAGG, "num_rounds=1", "deployment.min_train_nodes=3"], tmp_path, intercept=garble)
    (record,) = results["rounds"]
    (rejection,) = record["rejected"]
    assert rejection["node_id"] == victim and rejection["stage"] == "secure-aggregation share-keys"
    assert record["num_rejected"] == 1 and record["aggregation_error"] is None
    assert len(record["clients"]) == 4
    assert results["final"]["test_accuracy"] > 0.8


def test_secure_aggregation_composes_with_dp_sgd_clients(tmp_path: Path) -> None:
    """Clients quantize and mask their already-noised update: the same round as plain DP FedAvg."""
    base = [o for o in BASE if not o.startswith("privacy=")]
    # the same noise in both runs (a benchmark opt-in), so that the two rounds compare like for like
    dp = ["privacy=dp_sgd", "privacy.target_epsilon=4.0", "privacy.reproducible_noise=true", "num_rounds=1"]
    plain, _ = _run(dp, tmp_path / "plain", base=base)
    secure, _ = _run([*dp, *SECAGG], tmp_path / "secure", base=base)
    (record,) = secure["rounds"]
    assert record["aggregation_error"] is None
    assert 0 < record["epsilon_max"] <= 4.0 * 1.01
    assert record["epsilon_max"] == pytest.approx(plain["rounds"][0]["epsilon_max"])
    assert secure["final"]["test_accuracy"] == pytest.approx(plain["final"]["test_accuracy"], abs=0.01)


def test_rounds_are_pipelined_into_two_exchanges_after_the_first(tmp_path: Path) -> None:
    results, grid = _run([*SECAGG, "num_rounds=3"], tmp_path)
    by_round: dict[str, list[str]] = {}
    for message in grid.sent:
        by_round.setdefault(message.metadata.group_id, []).append(message.metadata.message_type)
    setup_types = {keys.SECAGG_SETUP, keys.SECAGG_SHARE_KEYS}
    assert setup_types <= set(by_round["1"])
    for later in ("2", "3"):
        assert set(by_round[later]) == {keys.SECAGG_TRAIN, keys.SECAGG_UNMASK}
    carrying = {
        m.metadata.group_id
        for m in grid.sent
        if m.metadata.message_type == keys.SECAGG_UNMASK and keys.SECAGG_SHARE_KEYS_RECORD in m.content
    }
    assert carrying == {"1", "2"}  # the last round prepares nothing
    assert all(r["aggregation_error"] is None and len(r["clients"]) == 5 for r in results["rounds"])
    assert results["final"]["test_accuracy"] > 0.9


def test_a_client_that_lost_its_secrets_rejoins_with_a_fresh_setup(tmp_path: Path) -> None:
    # min_train_nodes=4: the round set up without it goes on with the other four
    config = compose_config(BASE + [*SECAGG, "num_rounds=3", "deployment.min_train_nodes=4"])

    def forget(message: Message, reply: Message) -> Message | None:
        is_train = message.metadata.message_type == keys.SECAGG_TRAIN
        if is_train and message.metadata.group_id == "1" and message.metadata.dst_node_id == forgetful:
            del grid.contexts[forgetful].state[keys.STATE_SECAGG]  # e.g. the node restarted
        return reply

    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5, intercept=forget)
    forgetful = grid.node_ids[4]
    logging.getLogger("flwr").setLevel(logging.ERROR)
    results = run_server(grid, config, tmp_path)
    first, second, third = results["rounds"]
    # round 1: its masked input counts; it cannot unmask, nor take the setup of round 2 sent ahead
    assert {f["node_id"] for f in first["failures"]} == {forgetful}
    assert any("secure aggregation unmask" in f["reason"] for f in first["failures"])
    assert first["aggregation_error"] is None and len(first["clients"]) == 5
    # round 2 was set up without it, and a round is set up once: it sits out
    (failure,) = second["failures"]
    assert failure["node_id"] == forgetful and "sits out round 2" in failure["reason"]
    assert second["aggregation_error"] is None and len(second["clients"]) == 4
    # round 3 sets up afresh, for everyone
    third_types = {m.metadata.message_type for m in grid.sent if m.metadata.group_id == "3"}
    assert keys.SECAGG_SETUP in third_types
    assert third["failures"] == [] and len(third["clients"]) == 5
    assert third["aggregation_error"] is None
