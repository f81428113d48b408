"""The client's train handler with real Flower messages and real Opacus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from opacus.accountants import RDPAccountant

from aureon import keys
from aureon.config import AureonConfig
from aureon.federated.client import handle_evaluate, handle_train, load_client_data
from aureon.privacy import plan_dp
from tests.federated.messages import client_context, digits_config, flat, initial_arrays, train_message

pytestmark = pytest.mark.usefixtures("server_identity")


def test_reported_epsilon_is_the_independent_accountants_and_never_resets(tmp_path: Path) -> None:
    config = digits_config()
    context = client_context(1, 3, tmp_path)
    arrays = initial_arrays(config)
    data = load_client_data(config, 1, 3)
    plan = plan_dp(
        config.privacy,
        num_examples=len(data.y_train),
        batch_size=config.train.batch_size,
        local_epochs=config.train.local_epochs,
        num_rounds=config.num_rounds,
    )
    reported = []
    for server_round in (1, 2, 3):
        reply = handle_train(train_message(arrays, server_round), context, config)
        assert not reply.has_error()
        metrics = reply.content[keys.METRICS]
        reported.append(metrics[keys.EPSILON])
        arrays = reply.content[keys.ARRAYS]
        independent = RDPAccountant()
        independent.history = [
            (plan.noise_multiplier, plan.sample_rate, server_round * plan.steps_per_round)
        ]
        assert metrics[keys.EPSILON] == pytest.approx(
            independent.get_epsilon(delta=plan.target_delta), rel=1e-6
        )
    assert reported[0] < reported[1] < reported[2]
    assert reported[2] == pytest.approx(config.privacy.target_epsilon, abs=0.02)


def test_spent_budget_is_refused_with_a_reason(tmp_path: Path) -> None:
    config = digits_config("num_rounds=1")
    context = client_context(0, 3, tmp_path)
    arrays = initial_arrays(config)
    first = handle_train(train_message(arrays, 1), context, config)
    assert not first.has_error()
    second = handle_train(train_message(arrays, 2), context, config)
    assert second.has_error()
    assert "privacy budget spent" in second.error.reason
    assert "privacy.target_epsilon=2.0" in second.error.reason


def test_weights_on_the_wire_are_the_plain_modules(tmp_path: Path) -> None:
    config = digits_config()
    arrays = initial_arrays(config)
    reply = handle_train(train_message(arrays, 1), client_context(0, 3, tmp_path), config)
    sent = reply.content[keys.ARRAYS]
    assert list(sent.keys()) == list(arrays.keys())
    assert not any(name.startswith("_module.") for name in sent.keys())
    changed = [
        not np.array_equal(sent[name].numpy(), arrays[name].numpy()) for name in arrays.keys()
    ]
    assert all(changed)


def test_same_seed_same_update_other_seed_other_update() -> None:
    config = digits_config("privacy=none")
    arrays = initial_arrays(config)

    def update(cfg: AureonConfig) -> np.ndarray:
        reply = handle_train(train_message(arrays, 1), client_context(2, 3, None), cfg)
        return flat(reply.content[keys.ARRAYS])

    np.testing.assert_array_equal(update(config), update(config))
    assert not np.array_equal(update(config), update(digits_config("privacy=none", "seed=1")))


def test_fedprox_pull_keeps_the_update_closer_to_the_global_model() -> None:
    config = digits_config("privacy=none", "train.local_epochs=3")
    arrays = initial_arrays(config)
    start = flat(arrays)

    def distance(mu: float) -> float:
        message = train_message(arrays, 1)
        message.content[keys.CONFIG][keys.PROXIMAL_MU] = mu
        reply = handle_train(message, client_context(0, 3, None), config)
        end = flat(reply.content[keys.ARRAYS])
        return float(np.linalg.norm(end - start))

    assert distance(1.0) < distance(0.0)


def test_evaluate_reports_accuracy_on_the_test_split() -> None:
    config = digits_config()
    message = Message(
        content=RecordDict({keys.ARRAYS: initial_arrays(config), keys.CONFIG: ConfigRecord()}),
        dst_node_id=101,
        message_type=MessageType.EVALUATE,
    )
    reply = handle_evaluate(message, client_context(0, 3, None), config)
    metrics = reply.content[keys.METRICS]
    assert 0.0 <= metrics[keys.EVAL_ACCURACY] <= 1.0
    assert metrics[keys.NUM_EXAMPLES] == len(load_client_data(config, 0, 3).y_test)
