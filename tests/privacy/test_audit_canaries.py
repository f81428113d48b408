"""Canaries: held out of every partition, included by the auditor's coin, and trained on as ordinary rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from aureon import keys
from aureon.config import AuditConfig
from aureon.exceptions import ConfigError
from aureon.federated.client import handle_train, load_client_data
from aureon.launch.run_config import compose_config
from aureon.models import build_model
from aureon.privacy.canaries import RECORD_FILE, plan_canaries
from aureon.privacy.canary_audit import (
    audit_block,
    audit_losses,
    canary_losses,
    record_canaries,
    reported_claims,
    run_canaries,
    write_audit,
)
from tests.federated.messages import PINNED, client_context, train_message

LABELS = np.arange(1000, dtype=np.int64) % 10


def test_plan_is_a_pure_function_of_the_audit_seed() -> None:
    first = plan_canaries(AuditConfig(canaries=200, seed=3), labels=LABELS, num_classes=10, num_partitions=4)
    again = plan_canaries(AuditConfig(canaries=200, seed=3), labels=LABELS, num_classes=10, num_partitions=4)
    other = plan_canaries(AuditConfig(canaries=200, seed=4), labels=LABELS, num_classes=10, num_partitions=4)
    assert first.to_json() == again.to_json()
    assert not np.array_equal(first.included, other.included)


def test_canaries_are_mislabelled_held_out_rows_spread_over_the_clients() -> None:
    plan = plan_canaries(AuditConfig(canaries=400, seed=0), labels=LABELS, num_classes=10, num_partitions=4)
    assert len(np.unique(plan.rows)) == 400
    np.testing.assert_array_equal(plan.true_labels, LABELS[plan.rows])
    assert np.all(plan.labels != plan.true_labels) and set(plan.labels.tolist()) <= set(range(10))
    kept = plan.kept_rows()
    assert len(kept) == 600 and not set(kept.tolist()) & set(plan.rows.tolist())
    assert np.bincount(plan.partition).tolist() == [100, 100, 100, 100]
    assert 150 < plan.included.sum() < 250  # each one in with probability 1/2
    given = sum(len(plan.of_partition(pid)[0]) for pid in range(4))
    assert given == plan.included.sum()


def test_no_canaries_leaves_every_row_to_the_clients() -> None:
    plan = plan_canaries(AuditConfig(), labels=LABELS, num_classes=10, num_partitions=3)
    assert plan.size == 0
    np.testing.assert_array_equal(plan.kept_rows(), np.arange(1000))


def test_too_many_canaries_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"audit\.canaries must be <= 500"):
        plan_canaries(AuditConfig(canaries=501), labels=LABELS, num_classes=10, num_partitions=3)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["audit.canaries=-1"], "audit.canaries"),
        (["audit.kind=random"], "audit.kind"),
        (["audit.canaries=100", "audit.k_plus=80", "audit.k_minus=30"], r"audit.k_plus \+ audit.k_minus"),
        (["audit.confidence=1.0"], "audit.confidence"),
    ],
)
def test_bad_audit_settings_are_refused_with_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        compose_config(["dataset=digits", *overrides])


def test_guess_counts_default_to_a_tenth_of_the_canaries() -> None:
    assert AuditConfig(canaries=1000).guesses() == (100, 100)
    assert AuditConfig(canaries=1000, k_plus=50, k_minus=0).guesses() == (50, 0)


def test_a_clients_rows_grow_by_exactly_its_included_canaries() -> None:
    base = compose_config(["dataset=digits", *PINNED, "num_clients=3"])
    audited = compose_config(["dataset=digits", *PINNED, "num_clients=3", "audit.canaries=300", "audit.seed=5"])
    plan = run_canaries(audited)
    total = 0
    for pid in range(3):
        plain = load_client_data(base, pid, 3)
        data = load_client_data(audited, pid, 3)
        rows, labels = plan.of_partition(pid)
        own = len(data.y_train) - len(rows)
        total += own
        assert len(rows) > 0
        np.testing.assert_array_equal(data.y_train[own:], labels)  # the canaries, with their wrong labels
        assert len(plain.y_train) > own  # the held-out rows left the partitions
    assert total == plan.num_train - plan.size  # every row but the canaries is some client's


@pytest.mark.usefixtures("server_identity")
def test_canaries_reach_dp_training_as_ordinary_rows(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits", *PINNED, "num_clients=3", "audit.canaries=300"])
    data = load_client_data(config, 1, 3)
    model = build_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
    reply = handle_train(train_message(ArrayRecord(model.state_dict()), 1), client_context(1, 3, tmp_path), config)
    metrics = reply.content[keys.METRICS]
    assert metrics[keys.NUM_EXAMPLES] == len(data.y_train)  # the canaries counted, and charged
    assert 0 < metrics[keys.EPSILON] <= config.privacy.target_epsilon


def test_record_and_results_block(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits", "num_clients=2", "audit.canaries=100", "audit.seed=1"])
    plan = run_canaries(config)
    record_canaries(tmp_path, config, plan)
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert record["included"] == plan.included.astype(int).tolist() and record["seed"] == 1
    assert record["rows"] == plan.rows.tolist() and record["labels"] == plan.labels.tolist()

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8)).astype(np.float32)
    losses = canary_losses(model, x, np.array([0, 1, 2]), batch_size=2)
    with torch.no_grad():
        log_p = torch.log_softmax(model(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(losses, -log_p[[0, 1, 2], [0, 1, 2]], rtol=1e-5)  # each on its own label

    (tmp_path / "results.json").write_text(
        json.dumps({"privacy": {"kind": "sample-level", "delta": 1e-5}, "final": {"epsilon_max": 1.9}})
    )
    result = audit_losses(config, plan, np.where(plan.included, 0.1, 5.0))
    written = write_audit(tmp_path, audit_block(config, result, json.loads((tmp_path / "results.json").read_text())))
    assert written["audit"]["reported_epsilon"] == 1.9 and written["audit"]["correct"] == 20
    assert json.loads((tmp_path / "results.json").read_text()) == written


def test_a_canary_is_checked_against_every_guarantee_the_run_states() -> None:
    results = {
        "privacy": {
            "kind": "client-level DP-FedAvg and sample-level DP-SGD (two guarantees, stated separately)",
            "client_level": {"kind": "client-level DP-FedAvg", "epsilon_spent": 7.5, "delta": 1e-5},
            "sample_level": {"kind": "sample-level DP-SGD on each client's data (Opacus)", "delta": 1e-5},
        },
        "final": {"epsilon_max": 1.9},
    }
    claims = reported_claims(results)
    assert [(c["guarantee"].split()[0], c["epsilon"]) for c in claims] == [("client-level", 7.5), ("sample-level", 1.9)]
    config = compose_config(["dataset=digits", "audit.canaries=100"])
    plan = plan_canaries(config.audit, labels=LABELS, num_classes=10, num_partitions=5)
    block = audit_block(config, audit_losses(config, plan, np.ones(100)), results)
    assert block["reported_epsilon"] == 1.9 and block["guarantee"].startswith("sample-level")
    assert reported_claims({"privacy": {"kind": "none"}, "final": {"epsilon_max": None}}) == []
