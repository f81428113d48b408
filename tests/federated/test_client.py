"""The client's train handler with real Flower messages and real Opacus."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from opacus.accountants import RDPAccountant

from aureon import keys
from aureon.config import AureonConfig
from aureon.federated.client import handle_evaluate, handle_train, load_client_data
from aureon.launch.run_config import compose_config
from aureon.models import build_model
from aureon.privacy import plan_dp

pytestmark = pytest.mark.usefixtures("server_identity")


def _config(*overrides: str) -> AureonConfig:
    return compose_config(
        ["dataset=digits", "num_clients=3", "num_rounds=3", "train.batch_size=32", *overrides]
    )


def _context(partition_id: int, num_partitions: int) -> Context:
    return Context(
        run_id=1,
        node_id=100 + partition_id,
        node_config={
            keys.NODE_PARTITION_ID: partition_id,
            keys.NODE_NUM_PARTITIONS: num_partitions,
        },
        state=RecordDict(),
        run_config={},
    )


def _train_message(arrays: ArrayRecord, server_round: int) -> Message:
    content = RecordDict(
        {keys.ARRAYS: arrays, keys.CONFIG: ConfigRecord({keys.SERVER_ROUND: server_round})}
    )
    return Message(content=content, dst_node_id=101, message_type=MessageType.TRAIN)


def _initial_arrays(config: AureonConfig) -> ArrayRecord:
    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=config.seed)
    return ArrayRecord(model.state_dict())


def test_reported_epsilon_is_the_independent_accountants_and_never_resets() -> None:
    config = _config()
    context = _context(1, 3)
    arrays = _initial_arrays(config)
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
        reply = handle_train(_train_message(arrays, server_round), context, config)
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


def test_spent_budget_is_refused_with_a_reason() -> None:
    config = _config("num_rounds=1")
    context = _context(0, 3)
    arrays = _initial_arrays(config)
    first = handle_train(_train_message(arrays, 1), context, config)
    assert not first.has_error()
    second = handle_train(_train_message(arrays, 2), context, config)
    assert second.has_error()
    assert "privacy budget spent" in second.error.reason
    assert "privacy.target_epsilon=2.0" in second.error.reason


def test_weights_on_the_wire_are_the_plain_modules() -> None:
    config = _config()
    arrays = _initial_arrays(config)
    reply = handle_train(_train_message(arrays, 1), _context(0, 3), config)
    sent = reply.content[keys.ARRAYS]
    assert list(sent.keys()) == list(arrays.keys())
    assert not any(name.startswith("_module.") for name in sent.keys())
    changed = [
        not np.array_equal(sent[name].numpy(), arrays[name].numpy()) for name in arrays.keys()
    ]
    assert all(changed)


def test_same_seed_same_update_other_seed_other_update() -> None:
    config = _config("privacy=none")
    arrays = _initial_arrays(config)

    def update(cfg: AureonConfig) -> np.ndarray:
        reply = handle_train(_train_message(arrays, 1), _context(2, 3), cfg)
        return np.concatenate([a.numpy().ravel() for a in reply.content[keys.ARRAYS].values()])

    np.testing.assert_array_equal(update(config), update(config))
    assert not np.array_equal(update(config), update(_config("privacy=none", "seed=1")))


def test_fedprox_pull_keeps_the_update_closer_to_the_global_model() -> None:
    config = _config("privacy=none", "train.local_epochs=3")
    arrays = _initial_arrays(config)
    start = np.concatenate([a.numpy().ravel() for a in arrays.values()])

    def distance(mu: float) -> float:
        message = _train_message(arrays, 1)
        message.content[keys.CONFIG][keys.PROXIMAL_MU] = mu
        reply = handle_train(message, _context(0, 3), config)
        end = np.concatenate([a.numpy().ravel() for a in reply.content[keys.ARRAYS].values()])
        return float(np.linalg.norm(end - start))

    assert distance(1.0) < distance(0.0)


def test_evaluate_reports_accuracy_on_the_test_split() -> None:
    config = _config()
    message = Message(
        content=RecordDict({keys.ARRAYS: _initial_arrays(config), keys.CONFIG: ConfigRecord()}),
        dst_node_id=101,
        message_type=MessageType.EVALUATE,
    )
    reply = handle_evaluate(message, _context(0, 3), config)
    metrics = reply.content[keys.METRICS]
    assert 0.0 <= metrics[keys.EVAL_ACCURACY] <= 1.0
    assert metrics[keys.NUM_EXAMPLES] == len(load_client_data(config, 0, 3).y_test)
