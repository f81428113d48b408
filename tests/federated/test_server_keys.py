"""The client under a server it does not know: Flower's customary train config, other models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from opacus.accountants import RDPAccountant

from aureon import keys
from aureon.config import AureonConfig
from aureon.federated.client import handle_evaluate, handle_train, load_client_data
from aureon.federated.client_state import train_with_persisted_state
from aureon.federated.refusals import BUDGET_EXHAUSTED_CODE, MODEL_MISMATCH_CODE, TRAIN_REQUEST_CODE
from aureon.models import build_model
from aureon.privacy import plan_dp
from tests.federated.messages import client_context, digits_config, flat, initial_arrays, train_message

pytestmark = pytest.mark.usefixtures("server_identity")


def _plan(config: AureonConfig, *, local_epochs: int, num_rounds: int):
    data = load_client_data(config, 0, 3)
    return plan_dp(
        config.privacy,
        num_examples=len(data.y_train),
        batch_size=config.train.batch_size,
        local_epochs=local_epochs,
        num_rounds=num_rounds,
    )


def _epsilon(history: list[tuple[float, float, int]], delta: float) -> float:
    accountant = RDPAccountant()
    accountant.history = history
    return accountant.get_epsilon(delta=delta)


def test_the_servers_num_rounds_sets_the_dp_plan(tmp_path: Path) -> None:
    config = digits_config("num_rounds=1")  # alone, the client would refuse round 2
    context = client_context(0, 3, tmp_path)
    arrays = initial_arrays(config)
    plan = _plan(config, local_epochs=1, num_rounds=2)
    for server_round in (1, 2):
        reply = handle_train(train_message(arrays, server_round, **{keys.NUM_ROUNDS: 2}), context, config)
        assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
        expected = _epsilon([(plan.noise_multiplier, plan.sample_rate, server_round * plan.steps_per_round)], 1e-5)
        assert reply.content[keys.METRICS][keys.EPSILON] == pytest.approx(expected, rel=1e-6)
    assert reply.content[keys.METRICS][keys.EPSILON] == pytest.approx(config.privacy.target_epsilon, abs=0.02)
    third = handle_train(train_message(arrays, 3, **{keys.NUM_ROUNDS: 2}), context, config)
    assert third.error.code == BUDGET_EXHAUSTED_CODE


def test_more_local_epochs_from_the_server_are_planned_and_charged_as_they_run(tmp_path: Path) -> None:
    config = digits_config()  # num_rounds=3, local_epochs=1
    context = client_context(0, 3, tmp_path)
    arrays = initial_arrays(config)
    first = handle_train(train_message(arrays, 1), context, config)
    second = handle_train(train_message(arrays, 2, **{keys.LOCAL_EPOCHS: 3}), context, config)
    one, three = _plan(config, local_epochs=1, num_rounds=3), _plan(config, local_epochs=3, num_rounds=3)
    assert three.noise_multiplier > one.noise_multiplier  # more steps planned: more noise per step
    history = [(one.noise_multiplier, one.sample_rate, one.steps_per_round)]
    history.append((three.noise_multiplier, three.sample_rate, three.steps_per_round))
    assert not first.has_error() and not second.has_error()
    assert second.content[keys.METRICS][keys.EPSILON] == pytest.approx(_epsilon(history, 1e-5), rel=1e-6)


def test_a_server_cannot_stretch_the_run_budget_by_asking_for_fewer_rounds(tmp_path: Path) -> None:
    config = digits_config()  # the client plans 3 rounds
    context = client_context(0, 3, tmp_path)
    arrays = initial_arrays(config)
    assert not handle_train(train_message(arrays, 1), context, config).has_error()
    # one round planned to spend the whole target, on top of what round 1 spent
    greedy = handle_train(train_message(arrays, 2, **{keys.NUM_ROUNDS: 1}), context, config)
    assert greedy.error.code == BUDGET_EXHAUSTED_CODE
    assert "privacy.target_epsilon=2.0" in greedy.error.reason


def test_the_servers_lr_and_local_epochs_are_the_ones_trained_with() -> None:
    config = digits_config("privacy=none", "train.lr=0.05", "train.local_epochs=1")
    arrays = initial_arrays(config)

    def update(**sent: float | int) -> np.ndarray:
        reply = handle_train(train_message(arrays, 1, **sent), client_context(0, 3, None), config)
        return flat(reply.content[keys.ARRAYS])

    own = update()
    np.testing.assert_array_equal(update(**{keys.LR: 0.05, keys.LOCAL_EPOCHS: 1}), own)  # same values, same run
    start = flat(arrays)
    assert np.linalg.norm(update(**{keys.LR: 1e-5}) - start) < 0.05 * np.linalg.norm(own - start)
    assert not np.array_equal(update(**{keys.LOCAL_EPOCHS: 2}), own)


def test_a_bad_train_config_value_is_one_error_reply_naming_it(tmp_path: Path) -> None:
    config = digits_config()
    message = train_message(initial_arrays(config), 1, **{keys.LOCAL_EPOCHS: "many"})
    for reply in (
        handle_train(message, client_context(0, 3, tmp_path), config),
        train_with_persisted_state(message, client_context(0, 3, tmp_path), config, train=handle_train),
    ):
        assert reply.error.code == TRAIN_REQUEST_CODE
        assert reply.error.reason == "the server's train config 'local-epochs' must be an integer >= 1, got 'many'"
    assert not (tmp_path / "privacy-ledger.json").exists()  # refused before anything was charged


def _mlp_arrays(config: AureonConfig) -> ArrayRecord:
    mlp = digits_config("model=mlp")
    return ArrayRecord(build_model(mlp.model, input_shape=(1, 8, 8), num_classes=10, seed=config.seed).state_dict())


def test_arrays_of_another_model_are_refused_naming_the_first_tensor_and_both_shapes(tmp_path: Path) -> None:
    config = digits_config()  # a SmallCNN
    cnn = initial_arrays(config)
    first_name, first = next(iter(cnn.items()))
    reply = handle_train(train_message(_mlp_arrays(config), 1), client_context(0, 3, tmp_path), config)
    assert reply.error.code == MODEL_MISMATCH_CODE
    assert f"it sent no tensor {first_name!r} (expected {list(first.shape)})" in reply.error.reason
    assert "aureon.models.SmallCNN for dataset 'digits'" in reply.error.reason
    assert not (tmp_path / "privacy-ledger.json").exists()

    tensors = {name: array.numpy() for name, array in cnn.items()}
    tensors[first_name] = np.zeros((2, 3), dtype=np.float32)
    reshaped = ArrayRecord({name: Array(value) for name, value in tensors.items()})
    reply = handle_train(train_message(reshaped, 1), client_context(0, 3, tmp_path), config)
    assert f"tensor {first_name!r} has shape [2, 3], expected {list(first.shape)}" in reply.error.reason


def test_evaluation_of_another_model_is_refused_the_same_way() -> None:
    config = digits_config()
    content = RecordDict({keys.ARRAYS: _mlp_arrays(config), keys.CONFIG: ConfigRecord()})
    message = Message(content=content, dst_node_id=101, message_type=MessageType.EVALUATE)
    reply = handle_evaluate(message, client_context(0, 3, None), config)
    assert reply.error.code == MODEL_MISMATCH_CODE and "does not fit this client's" in reply.error.reason


def test_replies_name_no_partition_and_use_flowers_hyphenated_metric_names() -> None:
    config = digits_config("privacy=none")
    reply = handle_train(train_message(initial_arrays(config), 1), client_context(0, 3, None), config)
    assert set(reply.content[keys.METRICS].keys()) == {"num-examples", "train-loss"}
    content = RecordDict({keys.ARRAYS: initial_arrays(config), keys.CONFIG: ConfigRecord()})
    evaluated = handle_evaluate(
        Message(content=content, dst_node_id=101, message_type=MessageType.EVALUATE), client_context(0, 3, None), config
    )
    assert set(evaluated.content[keys.METRICS].keys()) == {"num-examples", "eval-loss", "eval-accuracy"}
