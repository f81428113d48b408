"""AUREON's apps with plain Flower apps, in every combination (issue 17).

Each federation is 2 supernodes on digits: AUREON's ClientApp under Flower's
own FedAvg ServerApp, a quickstart-style Flower ClientApp under AUREON's
ServerApp, and both kinds of client together under either server
(tests/interop/flower_apps.py holds the plain Flower apps). None passes a
run_config, as ``flwr.simulation.run_simulation`` does not. One test runs in
the Simulation Engine (Ray); the others run the same ServerApp and ClientApp
objects on the in-process grid, which routes messages like Flower without Ray.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

import aureon
from aureon import keys
from aureon.federated.refusals import MODEL_MISMATCH_CODE
from aureon.launch.run_config import compose_config
from aureon.strategies import UpdateValidator
from aureon.strategies.update_validator import NO_EPSILON
from aureon.tracking import RoundLog
from tests.inprocess_grid import InProcessGrid
from tests.interop.flower_apps import FlowerRun, fedavg_server_app, quickstart_client_app

pytestmark = pytest.mark.integration

DIGITS = [
    "dataset=digits",
    "model=cnn",
    "features=none",
    "train.lr=0.05",
    "train.local_epochs=1",
    "num_clients=2",
    "train.batch_size=32",
    "seed=0",
]
PLAIN = [*DIGITS, "privacy=none"]
DP = [*DIGITS, "privacy=dp_sgd", "privacy.target_epsilon=4.0", "num_rounds=1"]  # the server says 3 rounds
ROUNDS = 3
ACTOR_CPUS = min(2, os.cpu_count() or 1)


def _serve(server_app: ServerApp, client_app: object, tmp_path: Path) -> InProcessGrid:
    """Run ``server_app`` over two nodes served by ``client_app``, with no run_config anywhere."""
    grid = InProcessGrid(client_app, num_nodes=2, state_root=tmp_path / "clients")  # type: ignore[arg-type]
    server_app(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}))
    return grid


def _mixed(aureon_app: ClientApp, plain_app: ClientApp) -> object:
    """Node 0 runs AUREON's ClientApp, node 1 a plain Flower one."""

    def serve(message: Message, context: Context) -> Message:
        app = aureon_app if context.node_config[keys.NODE_PARTITION_ID] == 0 else plain_app
        return app(message, context)

    return serve


def _results(tmp_path: Path) -> dict[str, object]:
    def refuse(word: str) -> None:
        raise ValueError(f"results.json holds the bare word {word}")

    return json.loads((tmp_path / "run" / "results.json").read_text(), parse_constant=refuse)  # type: ignore[no-any-return]


def _assert_learned(run: FlowerRun, *, clients: int = 2) -> None:
    assert run.failures == {r: [] for r in range(1, ROUNDS + 1)}, run.failures
    assert run.replies == {r: clients for r in range(1, ROUNDS + 1)}
    initial, final = run.accuracy[0], run.accuracy[-1]
    assert final > initial + 0.3, run.accuracy


@pytest.mark.usefixtures("server_identity")
@pytest.mark.parametrize("overrides", [PLAIN, DP], ids=["no-dp", "dp-sgd"])
def test_aureon_clients_learn_under_flowers_own_fedavg(overrides: list[str], tmp_path: Path) -> None:
    config = compose_config(overrides)
    run = FlowerRun()
    server = fedavg_server_app(
        config, run, num_rounds=ROUNDS, train_config={"lr": 0.05, "num-rounds": ROUNDS}, fraction_evaluate=1.0
    )
    _serve(server, aureon.client_app(overrides), tmp_path)
    _assert_learned(run)
    # AUREON's evaluation replies are ones Flower's FedAvg averages as they are
    assert set(run.client_evaluation[ROUNDS]) == {keys.EVAL_LOSS, keys.EVAL_ACCURACY}


def test_aureon_dp_clients_learn_in_flowers_simulation_engine(tmp_path: Path) -> None:
    from flwr.simulation import run_simulation

    from aureon.launch.simulation import quiet_flower

    config = compose_config(DP)
    run = FlowerRun()
    quiet_flower(verbose=False)
    run_simulation(
        server_app=fedavg_server_app(config, run, num_rounds=ROUNDS, train_config={"lr": 0.05, "num-rounds": ROUNDS}),
        client_app=aureon.client_app(DP, state_dir=tmp_path / "clients"),
        num_supernodes=2,
        # one Ray actor serves both nodes on two cores: torch and Opacus are imported once
        backend_config={
            "client_resources": {"num_cpus": ACTOR_CPUS, "num_gpus": 0},
            "init_args": {"include_dashboard": False},
        },
    )
    _assert_learned(run)
    assert sorted(p.name for p in (tmp_path / "clients").iterdir()) == ["partition-0", "partition-1"]


@pytest.mark.usefixtures("server_identity")
@pytest.mark.parametrize(
    "loss_key, wrapped",
    [("train_loss", True), (keys.TRAIN_LOSS, False)],
    ids=["quickstart-names-fedavg-in-aureons-validation", "hyphenated-names-plain-fedavg"],
)
def test_a_mixed_federation_aggregates_every_round_under_flowers_fedavg(
    loss_key: str, wrapped: bool, tmp_path: Path
) -> None:
    """Flower's FedAvg needs one set of metric names: a client with Flower's hyphenated names fits as it is,
    one with the quickstart's ``train_loss`` needs AUREON's validation to keep only the shared metrics."""
    config = compose_config(PLAIN)
    run = FlowerRun()
    server = fedavg_server_app(
        config,
        run,
        num_rounds=ROUNDS,
        train_config={"lr": 0.05},
        wrap=(lambda fedavg: UpdateValidator(fedavg, round_log=RoundLog())) if wrapped else (lambda fedavg: fedavg),
    )
    _serve(server, _mixed(aureon.client_app(PLAIN), quickstart_client_app(config, loss_key=loss_key)), tmp_path)
    _assert_learned(run)


@pytest.mark.usefixtures("server_identity")
def test_a_clientapp_without_config_refuses_every_round_with_one_clear_reason(tmp_path: Path) -> None:
    from clients.app import app  # the `flwr run .` ClientApp, given no run_config

    config = compose_config(PLAIN)
    run = FlowerRun()
    _serve(fedavg_server_app(config, run, num_rounds=1, train_config={"lr": 0.05}), app, tmp_path)
    (reasons,) = run.failures.values()
    assert len(reasons) == 2 and len(set(reasons)) == 1
    assert "found no config: its run_config has no 'overrides' entry" in reasons[0]
    assert run.replies == {1: 0} and run.accuracy[0] == run.accuracy[-1]


@pytest.mark.usefixtures("server_identity")
def test_a_server_with_another_model_gets_the_first_mismatch_named(tmp_path: Path) -> None:
    mlp = compose_config([*PLAIN, "model=mlp"])  # the server's model; the clients build a SmallCNN
    seen: list[int] = []
    client = aureon.client_app(PLAIN)

    def watched(message: Message, context: Context) -> Message:
        reply = client(message, context)
        seen.append(reply.error.code if reply.has_error() else 0)
        return reply

    run = FlowerRun()
    _serve(fedavg_server_app(mlp, run, num_rounds=1, train_config={"lr": 0.05}), watched, tmp_path)
    assert seen == [MODEL_MISMATCH_CODE] * 2
    reason = run.failures[1][0]
    assert reason.startswith("the server's model does not fit this client's: it sent no tensor 'features.0.weight'")
    assert "aureon.models.SmallCNN for dataset 'digits'" in reason


@pytest.mark.usefixtures("server_identity")
def test_a_quickstart_flower_client_trains_under_aureons_server_app(tmp_path: Path) -> None:
    config = compose_config([*PLAIN, f"num_rounds={ROUNDS}", "train.lr_decay=0.5"])
    grid = _serve(aureon.server_app(config, run_dir=tmp_path / "run"), quickstart_client_app(config), tmp_path)
    # each round asked for Flower's customary train config, the lr following the config's schedule
    sent = [dict(m.content[keys.CONFIG]) for m in grid.sent]
    assert [(c[keys.SERVER_ROUND], c[keys.NUM_ROUNDS], c[keys.LOCAL_EPOCHS]) for c in sent[::2]] == [
        (r, ROUNDS, 1) for r in range(1, ROUNDS + 1)
    ]
    assert [c[keys.LR] for c in sent[::2]] == pytest.approx([0.05, 0.025, 0.0125])
    results = _results(tmp_path)
    assert results["finished"] and results["rounds_aborted"] == []
    for record in results["rounds"]:
        assert (record["failures"], record["rejected"], record["aggregation_error"]) == ([], [], None)
        clients = record["clients"]
        assert sorted(c["node_id"] for c in clients) == sorted(grid.node_ids)
        assert all(c["partition_id"] is None and c["epsilon"] is None for c in clients)  # named only by node
        assert all(c["num_examples"] == 600 and 0 < c["train_loss"] < 5 for c in clients)
    assert results["privacy"] == {"kind": "none"}
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.3


@pytest.mark.usefixtures("server_identity")
def test_under_dp_aureons_server_rejects_a_client_without_epsilon_and_the_run_says_it_made_no_model(
    tmp_path: Path,
) -> None:
    config = compose_config([*DIGITS, "privacy=dp_sgd", "num_rounds=2"])  # privacy.require_client_dp=true
    _serve(aureon.server_app(config, run_dir=tmp_path / "run"), quickstart_client_app(config), tmp_path)
    results = _results(tmp_path)
    for record in results["rounds"]:
        assert [r["reason"] for r in record["rejected"]] == [NO_EPSILON, NO_EPSILON]
        assert "none of the 2 valid replies was aggregated" in record["aggregation_error"]
        assert record["test_accuracy"] == results["initial"]["test_accuracy"]
    assert not results["finished"] and results["rounds_aborted"] == [1, 2]
    assert results["reason"].startswith("every round (2) was aborted")
    assert results["privacy"]["kind"].startswith("sample-level DP-SGD")  # no client's data reached the model


@pytest.mark.usefixtures("server_identity")
def test_when_dp_is_not_required_the_plain_clients_train_and_no_guarantee_is_claimed(tmp_path: Path) -> None:
    config = compose_config([*DIGITS, "privacy=dp_sgd", "privacy.require_client_dp=false", "num_rounds=2"])
    grid = _serve(aureon.server_app(config, run_dir=tmp_path / "run"), quickstart_client_app(config), tmp_path)
    results = _results(tmp_path)
    assert results["finished"] and all(len(r["clients"]) == 2 for r in results["rounds"])
    privacy = results["privacy"]
    assert privacy["kind"] == "none" and privacy["configured"]["target_epsilon"] == 2.0
    assert privacy["clients_without_guarantee"] == [
        {"node_id": node, "partition_id": None, "rounds": [1, 2]} for node in sorted(grid.node_ids)
    ]
    assert results["final"]["epsilon_max"] is None


@pytest.mark.usefixtures("server_identity")
def test_a_mixed_federation_aggregates_every_round_under_aureons_server_app(tmp_path: Path) -> None:
    config = compose_config([*PLAIN, f"num_rounds={ROUNDS}"])
    clients = _mixed(aureon.client_app(PLAIN), quickstart_client_app(config))
    grid = _serve(aureon.server_app(config, run_dir=tmp_path / "run"), clients, tmp_path)
    results = _results(tmp_path)
    assert results["finished"] and results["rounds_aborted"] == []
    aureon_node, plain_node = grid.node_ids
    for record in results["rounds"]:
        assert (record["rejected"], record["failures"]) == ([], [])
        labels = {c["node_id"]: c["partition_id"] for c in record["clients"]}
        assert labels == {aureon_node: 0, plain_node: None}
        assert set(record["epsilon_per_client"]) == {"0", f"node-{plain_node}"}
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.3


@pytest.mark.usefixtures("server_identity")
def test_a_mixed_federation_under_dp_aggregates_the_private_client_and_keeps_the_guarantee(tmp_path: Path) -> None:
    overrides = [*DIGITS, "privacy=dp_sgd", "privacy.target_epsilon=4.0", f"num_rounds={ROUNDS}"]
    config = compose_config(overrides)
    clients = _mixed(aureon.client_app(overrides), quickstart_client_app(config))
    grid = _serve(aureon.server_app(config, run_dir=tmp_path / "run"), clients, tmp_path)
    results = _results(tmp_path)
    aureon_node, plain_node = grid.node_ids
    assert results["finished"] and results["rounds_aborted"] == []
    for record in results["rounds"]:
        assert [(r["node_id"], r["reason"]) for r in record["rejected"]] == [(plain_node, NO_EPSILON)]
        assert record["epsilon_per_client"]["0"] > 0
    assert results["privacy"]["kind"].startswith("sample-level DP-SGD")
    assert results["privacy"]["clients_without_guarantee"] == []
    assert 0 < results["final"]["epsilon_max"] <= 4.0 * 1.01
    assert aureon_node != plain_node
