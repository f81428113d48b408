"""Real processes on 127.0.0.1: TLS, node authentication, dropout, checkpoint and resume.

Every process is started in its own process group and stopped in ``finally``
(the Deployment fixture), whether the test passes or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aureon.launch.certs import DeploymentCerts, generate_certs, write_node_keys
from aureon.launch.certs import NodeKeys
from aureon.launch.processes import free_port
from aureon.tracking.checkpoint import CheckpointError, load_checkpoint

from tests.launch.deployment import Deployment, read_results, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.deployment]

# The SmallCNN on pixels with one local epoch, pinned: the default run's recipe may change.
RUN = ["dataset=digits", "features=none", "model=cnn", "train.local_epochs=1", "train.lr=0.05", "train.momentum=0.9",
       "train.lr_decay=1.0", "train.batch_size=32", "num_clients=3", "num_rounds=3", "seed=7", "privacy=dp_sgd", "deployment.round_timeout=60"]
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DeploymentCerts:
    return generate_certs(out=tmp_path_factory.mktemp("certs"), hosts=["127.0.0.1", "localhost"], nodes=3)


@pytest.fixture()
def deployment(tmp_path: Path, certs: DeploymentCerts) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path, certs)
    try:
        yield deployed
    finally:
        deployed.close(list(tmp_path.glob("run*")))


def _finish(deployment: Deployment, run_dir: Path) -> dict[str, Any]:
    server = deployment.server
    assert server is not None
    try:
        wait_until(lambda: not server.alive(), timeout=RUN_TIMEOUT, what="the server to finish the run")
    except TimeoutError:
        pytest.fail(f"run did not finish in {RUN_TIMEOUT} s\n{deployment.log_text()}")
    results = read_results(run_dir)
    assert server.popen.returncode == 0 and results is not None, deployment.log_text()
    return results


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, certs: DeploymentCerts) -> Iterator[dict[str, Any]]:
    """An uninterrupted TLS + authentication run, with an unregistered and a plaintext node knocking."""
    root = tmp_path_factory.mktemp("reference")
    deployed = Deployment(root, certs)
    run_dir = root / "run"
    try:
        deployed.start_server(RUN, run_dir=run_dir)
        for index in range(3):
            deployed.start_client(index, key=certs.node(index).private_key)
        stranger = write_node_keys(NodeKeys(private_key=root / "stranger", public_key=root / "stranger.pub"))
        unregistered = deployed.start_client(0, key=stranger.private_key, max_retries=2)
        plaintext = deployed.start_client(1, key=None, insecure=True, max_retries=2)
        wait_until(lambda: unregistered.log_contains("could not establish a connection")
                   and plaintext.log_contains("could not establish a connection"),
                   timeout=120, what="the rogue nodes to be refused")
        results = _finish(deployed, run_dir)
        yield {"results": results, "run_dir": run_dir, "unregistered": unregistered.log_tail(20_000),
               "plaintext": plaintext.log_tail(20_000), "nodes": len(results["rounds"][-1]["clients"])}
    finally:
        deployed.close([run_dir])


def test_tls_authenticated_dp_run_completes_and_learns(reference: dict[str, Any]) -> None:
    results = reference["results"]
    assert results["finished"] and results["rounds_completed"] == 3
    accuracies = [results["initial"]["test_accuracy"]] + [r["test_accuracy"] for r in results["rounds"]]
    assert accuracies[-1] > accuracies[0] + 0.1, accuracies
    epsilons = [r["epsilon_max"] for r in results["rounds"]]
    assert all(e is not None and e > 0 for e in epsilons) and epsilons == sorted(epsilons)
    assert [len(r["clients"]) for r in results["rounds"]] == [3, 3, 3]
    assert load_checkpoint(reference["run_dir"]).round == 3


def test_unregistered_and_plaintext_nodes_are_refused(reference: dict[str, Any]) -> None:
    assert "must be registered" in reference["unregistered"] or "Failed to activate SuperNode" in reference["unregistered"]
    assert "insecure" in reference["plaintext"].lower()
    assert "Server disconnected" in reference["plaintext"] or "SSL" in reference["plaintext"]
    partitions = {c["partition_id"] for r in reference["results"]["rounds"] for c in r["clients"]}
    assert partitions == {0, 1, 2} and reference["nodes"] == 3


def test_client_killed_in_round_two_does_not_stop_the_run(deployment: Deployment, tmp_path: Path) -> None:
    run_dir = tmp_path / "run-dropout"
    deployment.start_server(
        [*RUN, "deployment.min_train_nodes=2", "deployment.round_timeout=90"],  # round 3 waits for all 3
        run_dir=run_dir,
    )
    clients = [deployment.start_client(i, key=deployment.certs.node(i).private_key) for i in range(3)]
    victim = clients[2]
    wait_until(lambda: (read_results(run_dir) or {}).get("rounds_completed", 0) >= 1, timeout=RUN_TIMEOUT,
               what="round 1", poll=0.1)
    wait_until(lambda: victim.log_tail(200_000).count("Start `flwr-clientapp` process") >= 2,
               timeout=60, what="client 2 to start round 2", poll=0.05)
    victim.kill()
    deployment.start_client(2, key=deployment.certs.node(2).private_key, rejoin=True)
    results = _finish(deployment, run_dir)
    assert results["finished"] and results["rounds_completed"] == 3
    round2 = results["rounds"][1]
    assert 2 not in {c["partition_id"] for c in round2["clients"]}
    assert len(round2["clients"]) == 2 and round2["num_failures"] == 1, round2
    round3 = {c["partition_id"]: c for c in results["rounds"][2]["clients"]}
    assert 2 in round3, "the restarted client should rejoin round 3"
    eps_round1 = {c["partition_id"]: c["epsilon"] for c in results["rounds"][0]["clients"]}
    assert round3[2]["epsilon"] > eps_round1[2], "a restarted client must not reset its spent epsilon"


def test_server_killed_after_round_two_resumes_and_continues_the_budget(
    deployment: Deployment, tmp_path: Path, reference: dict[str, Any]
) -> None:
    run_dir = tmp_path / "run-resume"
    deployment.start_server(RUN, run_dir=run_dir)
    clients = [deployment.start_client(i, key=deployment.certs.node(i).private_key) for i in range(3)]

    def _round() -> int:
        try:
            return load_checkpoint(run_dir).round
        except CheckpointError:
            return 0

    wait_until(lambda: _round() >= 2, timeout=RUN_TIMEOUT, what="the round-2 checkpoint", poll=0.1)
    deployment.crash_server(run_dir)
    for client in clients:
        client.kill()
    assert _round() == 2 and not (read_results(run_dir) or {}).get("finished")

    deployment.port = free_port()  # the crashed SuperLink's port may linger in TIME_WAIT
    deployment.start_server([f"resume={run_dir}"], run_dir=run_dir)
    for i in range(3):
        deployment.start_client(i, key=deployment.certs.node(i).private_key)
    results = _finish(deployment, run_dir)
    assert results["finished"] and [r["round"] for r in results["rounds"]] == [1, 2, 3]

    # Each client's ledger continues: round r's epsilon composes r rounds, as in the
    # uninterrupted run. The models differ by design: every client draws fresh noise.
    expected = reference["results"]
    for got, want in zip(results["rounds"], expected["rounds"]):
        assert got["epsilon_per_client"] == pytest.approx(want["epsilon_per_client"], rel=1e-9)
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.2
    assert results["final"]["test_accuracy"] == pytest.approx(
        expected["final"]["test_accuracy"], abs=0.2
    )
