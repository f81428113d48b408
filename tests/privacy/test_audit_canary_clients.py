"""Canary clients: whole clients of mislabelled examples, joining by the auditor's coin, audited at client level."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aureon.config import AuditConfig
from aureon.exceptions import ConfigError
from aureon.federated.apps import make_client_app
from aureon.federated.client import load_client_data
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.privacy.canaries import RECORD_FILE
from aureon.privacy.canary_audit import audit_run, record_canaries, run_canaries
from aureon.privacy.canary_clients import (
    CanaryClientPlan,
    included_canary_clients,
    plan_canary_clients,
    with_canary_clients,
)
from simulations.audit import check_auditable
from tests.inprocess_grid import InProcessGrid

LABELS = np.arange(1000, dtype=np.int64) % 10
SMALL = [
    "dataset=digits",
    "features=none",
    "model=cnn",
    "num_clients=3",
    "num_rounds=2",
    "train.batch_size=32",
    "audit.kind=canary_clients",
    "audit.canaries=12",
    "audit.examples_per_canary=6",
    "audit.k_plus=2",
    "audit.k_minus=2",
]


def test_each_canary_client_holds_its_own_examples_under_one_wrong_label() -> None:
    config = AuditConfig(canaries=20, seed=5, kind="canary_clients", examples_per_canary=7)
    included = int(included_canary_clients(config).sum())
    plan = plan_canary_clients(config, labels=LABELS, num_classes=10, num_clients=4 + included)
    assert plan.regular_clients == 4 and plan.rows.shape == (20, 7)
    assert len(np.unique(plan.rows)) == 140  # no example is shared between canary clients
    assert np.all(plan.true_labels != plan.labels[:, None])
    assert not set(plan.kept_rows().tolist()) & set(plan.rows.ravel().tolist())
    # the included canary clients take the last partition ids, in canary order; regular ones hold none
    ids = plan.partition_ids()
    assert [i for i in ids if i is not None] == list(range(4, 4 + included))
    for canary, pid in enumerate(ids):
        if pid is not None:
            rows, labels = plan.of_partition(pid)
            np.testing.assert_array_equal(rows, plan.rows[canary])
            assert set(labels.tolist()) == {plan.labels[canary]}
    assert plan.of_partition(3)[0].size == 0
    again = plan_canary_clients(config, labels=LABELS, num_classes=10, num_clients=4 + included)
    assert again.to_json() == plan.to_json()


def test_the_federation_grows_by_the_included_canary_clients_only() -> None:
    config = compose_config(SMALL)
    grown = with_canary_clients(config)
    included = int(included_canary_clients(config.audit).sum())
    assert 0 < included < 12
    assert (config.num_clients, grown.num_clients) == (3, 3 + included)
    plain = compose_config(["dataset=digits", "num_clients=3", "audit.canaries=12"])
    assert with_canary_clients(plain).num_clients == 3  # example canaries add no client


def test_a_canary_client_trains_on_its_examples_only_and_regular_clients_keep_theirs() -> None:
    config = with_canary_clients(compose_config(SMALL))
    plan = run_canaries(config)
    assert isinstance(plan, CanaryClientPlan)
    canary_pid = config.num_clients - 1
    data = load_client_data(config, canary_pid, config.num_clients, test=False)
    rows, labels = plan.of_partition(canary_pid)
    assert len(data.y_train) == 6 and set(data.y_train.tolist()) == set(labels.tolist())
    regular = [load_client_data(config, pid, config.num_clients, test=False) for pid in range(3)]
    assert sum(len(d.y_train) for d in regular) == len(plan.kept_rows())


def test_too_few_clients_for_the_included_canaries_is_a_config_error() -> None:
    config = AuditConfig(canaries=20, seed=5, kind="canary_clients")
    with pytest.raises(ConfigError, match="num_clients must be >"):
        plan_canary_clients(config, labels=LABELS, num_classes=10, num_clients=1)


def test_too_many_canary_examples_is_a_config_error_naming_both_keys() -> None:
    config = AuditConfig(canaries=100, kind="canary_clients", examples_per_canary=6)
    with pytest.raises(ConfigError, match=r"audit\.canaries \* audit\.examples_per_canary must be <= 500"):
        plan_canary_clients(config, labels=LABELS, num_classes=10, num_clients=200)


def test_bad_examples_per_canary_is_refused_with_the_key() -> None:
    with pytest.raises(ConfigError, match="audit.examples_per_canary"):
        compose_config(["dataset=digits", "audit.examples_per_canary=0"])


def test_canary_clients_are_refused_for_the_centralized_baseline() -> None:
    with pytest.raises(ConfigError, match="federated strategy"):
        check_auditable(compose_config([*SMALL, "strategy=centralized"]))


def audited(overrides: list[str], run_dir: Path) -> tuple[dict[str, Any], int]:
    config = with_canary_clients(compose_config(overrides))
    plan = run_canaries(config)
    record_canaries(run_dir, config, plan)
    app = make_client_app(lambda _ctx: config)
    grid = InProcessGrid(app, num_nodes=config.num_clients, state_root=run_dir / "clients")
    return audit_run(config, run_dir, plan, run_server(grid, config, run_dir)), config.num_clients


def replying_partitions(results: dict[str, Any]) -> set[int]:
    """Every partition id a round record names among the replies."""
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("partition_id"), int):
                found.add(node["partition_id"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(results.get("rounds"))
    return found


@pytest.mark.usefixtures("server_identity")
def test_a_client_level_dp_run_audited_with_canary_clients(tmp_path: Path) -> None:
    logging.getLogger("flwr").setLevel(logging.ERROR)
    results, num_clients = audited([*SMALL, "privacy=client_level", "privacy.target_epsilon=4"], tmp_path)
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    included_ids = [pid for pid in record["partition_ids"] if pid is not None]
    assert record["kind"] == "canary_clients" and len(record["included"]) == 12
    assert len(included_ids) == sum(record["included"]) == num_clients - 3
    # every client, canary clients included, is sampled (fraction_train=1) and its reply recorded
    assert set(included_ids) <= replying_partitions(results)
    block = results["audit"]
    assert block["kind"] == "canary_clients" and block["unit"] == "client"
    assert (block["canaries"], block["included"], block["guesses"]) == (12, len(included_ids), 4)
    assert block["federation"]["num_clients"] == results["num_clients"] == num_clients
    assert block["federation"]["sample_rate"] == pytest.approx(1.0)
    client_level = results["privacy"]["client_level"]
    assert block["guarantee"] == client_level["kind"]
    assert block["reported_epsilon"] == pytest.approx(client_level["epsilon_spent"])
    assert block["delta"] == client_level["delta"] == 1e-5
    assert 0.0 <= block["epsilon_lower_bound"] <= block["reported_epsilon"]
