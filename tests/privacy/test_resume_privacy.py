"""A resume continues every client's spent epsilon and never changes the budget of a run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flwr.app import Message
from opacus.accountants import RDPAccountant

from aureon import keys
from aureon.exceptions import LedgerError
from aureon.federated.apps import make_client_app
from aureon.federated.client import load_client_data
from aureon.federated.resume import check_resumable, run_identity
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.launch.simulation import client_state_root
from aureon.privacy import plan_dp
from aureon.tracking.checkpoint import Checkpoint, CheckpointError
from tests.inprocess_grid import InProcessGrid

BASE = ["dataset=digits", "features=none", "model=logreg", "num_clients=2", "num_rounds=3", "train.batch_size=32",
        "train.local_epochs=1"]


@pytest.mark.parametrize(
    "change",
    [
        "privacy.target_epsilon=8",
        "privacy.target_delta=1e-6",
        "privacy.max_grad_norm=2.0",
        "privacy.accountant=prv",
        "privacy.reproducible_noise=true",
        "train.batch_size=64",
        "train.local_epochs=2",
        "num_rounds=5",
    ],
)
def test_a_resume_that_changes_a_privacy_setting_is_refused_naming_it(change: str) -> None:
    original = compose_config(BASE)
    checkpoint = Checkpoint(round=1, run_key="k", arrays={}, identity=run_identity(original))
    changed = compose_config([*BASE, change, "resume=/runs/a"])
    key = change.split("=")[0]
    with pytest.raises(CheckpointError, match=rf"privacy settings of the run: {key} \(checkpoint"):
        check_resumable(checkpoint, changed)


def test_an_unchanged_resume_is_accepted() -> None:
    config = compose_config([*BASE, "resume=/runs/a"])
    check_resumable(Checkpoint(round=1, run_key="k", arrays={}, identity=run_identity(config)), config)


class ServerKilled(Exception):
    """Stands for the coordinator dying between two rounds."""


@pytest.mark.usefixtures("server_identity")
def test_a_resumed_run_continues_every_clients_epsilon(tmp_path: Path) -> None:
    logging.getLogger("flwr").setLevel(logging.ERROR)
    run_dir, ledgers = tmp_path / "run", tmp_path / "clients"
    config = compose_config(BASE)
    app = make_client_app(lambda _ctx: config)

    def die_in_round_three(message: Message, reply: Message) -> Message:
        if message.content[keys.CONFIG][keys.SERVER_ROUND] == 3:
            raise ServerKilled
        return reply

    with pytest.raises(ServerKilled):
        run_server(InProcessGrid(app, num_nodes=2, state_root=ledgers, intercept=die_in_round_three),
                   config, run_dir)
    resumed = compose_config([*BASE, f"resume={run_dir}"])
    grid = InProcessGrid(app, num_nodes=2, state_root=ledgers)
    results = run_server(grid, resumed, run_dir)

    assert [r["round"] for r in results["rounds"]] == [1, 2, 3]
    for partition in (0, 1):
        data = load_client_data(config, partition, 2)
        plan = plan_dp(config.privacy, num_examples=len(data.y_train), batch_size=32,
                       local_epochs=1, num_rounds=3)
        independent = RDPAccountant()
        independent.history = [(plan.noise_multiplier, plan.sample_rate, 3 * plan.steps_per_round)]
        (client,) = [c for c in results["rounds"][2]["clients"] if c["node_id"] == grid.node_ids[partition]]
        assert client["epsilon"] == pytest.approx(independent.get_epsilon(delta=1e-5), rel=1e-6)
        assert client["epsilon"] == pytest.approx(2.0, abs=0.02)


def test_simulation_resumes_find_the_first_runs_ledgers(tmp_path: Path) -> None:
    first = client_state_root(compose_config(BASE), tmp_path / "a")
    (first / "partition-0").mkdir(parents=True)
    second = client_state_root(compose_config([*BASE, f"resume={tmp_path / 'a'}"]), tmp_path / "b")
    third = client_state_root(compose_config([*BASE, f"resume={tmp_path / 'b'}"]), tmp_path / "c")
    assert first == second == third == (tmp_path / "a" / "clients").resolve()


def test_a_resume_without_the_clients_ledgers_is_refused(tmp_path: Path) -> None:
    client_state_root(compose_config(BASE), tmp_path / "a")  # never trained: no ledgers
    with pytest.raises(LedgerError, match="ledgers .* are missing"):
        client_state_root(compose_config([*BASE, f"resume={tmp_path / 'a'}"]), tmp_path / "b")
