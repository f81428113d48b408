"""The sample-level guarantee holds against the coordinator: what a server sends cannot weaken it.

Each test plays the server (real Flower messages, real Opacus) and checks one
promise of the threat model in README's privacy section.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aureon import keys
from aureon.config import TrainConfig
from aureon.exceptions import LedgerError
from aureon.federated.client import (
    BUDGET_EXHAUSTED_CODE,
    PRIVACY_REFUSED_CODE,
    handle_evaluate,
    handle_train,
    load_client_data,
)
from aureon.federated.client_state import ClientStateError, train_with_persisted_state
from aureon.models.zoo import LogisticRegression
from aureon.privacy import plan_dp
from aureon.privacy import entropy
from aureon.privacy.floor import PrivacyFloor
from aureon.privacy.ledger import LEDGER_FILE, LedgerStore, PrivacyLedger
from aureon.privacy.private_training import PrivateTraining
from aureon.training import train_model
from tests.federated.messages import client_context, digits_config, flat, initial_arrays, train_message

pytestmark = pytest.mark.usefixtures("server_identity")


def _update(config_overrides: tuple[str, ...], state_dir: Path, **node_config: object) -> np.ndarray:
    config = digits_config(*config_overrides)
    reply = handle_train(
        train_message(initial_arrays(config), 1), client_context(0, 3, state_dir, **node_config), config
    )
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    return flat(reply.content[keys.ARRAYS])


def test_same_config_and_seed_release_different_updates(tmp_path: Path) -> None:
    first = _update((), tmp_path / "a")
    second = _update((), tmp_path / "b")
    assert not np.array_equal(first, second)


def test_reproducible_noise_is_an_explicit_opt_in(tmp_path: Path) -> None:
    opt_in = ("privacy.reproducible_noise=true",)
    np.testing.assert_array_equal(_update(opt_in, tmp_path / "a"), _update(opt_in, tmp_path / "b"))


def test_noise_and_sampling_come_only_from_local_entropy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixing the client's own entropy (and nothing else) makes the release repeat.

    So everything random in it is drawn from that local source: nothing is
    derived from the message, whose contents the server knows anyway.
    """
    drawn: list[int] = []

    def fixed_entropy() -> int:
        drawn.append(1)
        return 123456789

    monkeypatch.setattr(entropy, "local_entropy_seed", fixed_entropy)
    first = _update((), tmp_path / "a")
    second = _update((), tmp_path / "b")
    np.testing.assert_array_equal(first, second)
    assert len(drawn) == 2


def _batch_sizes(seed: int) -> list[int]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 60)
    model = LogisticRegression(input_shape=(1, 8, 8), num_classes=10)
    sizes: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    plan = plan_dp(digits_config().privacy, num_examples=60, batch_size=6, local_epochs=1, num_rounds=1)
    train_model(model, x, y, config=TrainConfig(batch_size=6, lr=0.1, momentum=0.0), seed=seed,
                private=PrivateTraining(plan=plan))
    return sizes


def test_poisson_batches_do_not_follow_the_run_seed() -> None:
    assert _batch_sizes(seed=0) != _batch_sizes(seed=0)


def test_an_empty_poisson_batch_still_releases_noise_and_is_charged() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    model = LogisticRegression(input_shape=(1, 8, 8), num_classes=10)
    moves: list[tuple[int, float]] = []
    previous: dict[str, torch.Tensor] = {}

    def record(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        now = {n: p.detach().clone() for n, p in model.named_parameters()}
        if previous:
            moved = sum(float((now[n] - previous[n]).abs().sum()) for n in now)
            moves.append((pending[0], moved))
        previous.update(now)
        pending[:] = [len(args[0])]

    pending: list[int] = []
    model.register_forward_pre_hook(record)
    train = TrainConfig(batch_size=1, lr=0.1, momentum=0.0)
    private = PrivateTraining.calibrated(digits_config().privacy, num_examples=50, train=train, num_rounds=1)
    charged = private.charge(PrivacyLedger(data="d"), run="r", server_round=1)
    result = train_model(model, x, y, config=train, seed=0, private=private)
    empty_steps = [moved for size, moved in moves if size == 0]
    assert empty_steps, "with q = 1/50 about a third of the batches are empty"
    assert all(moved > 0 for moved in empty_steps)  # pure noise was added
    assert [entry.steps for entry in charged.entries] == [result.steps] == [private.plan.steps_per_round]


def test_a_replayed_round_returns_the_stored_reply_and_charges_nothing(tmp_path: Path) -> None:
    config = digits_config()
    context = client_context(0, 3, tmp_path)
    message = train_message(initial_arrays(config), 1)
    first = train_with_persisted_state(message, context, config, train=handle_train)
    again = train_with_persisted_state(message, client_context(0, 3, tmp_path), config, train=handle_train)
    for name, array in first.content[keys.ARRAYS].items():
        assert again.content[keys.ARRAYS][name].data == array.data
    assert again.content[keys.METRICS][keys.EPSILON] == first.content[keys.METRICS][keys.EPSILON]
    ledger = LedgerStore(tmp_path).load("builtin:digits")
    assert [entry.round for entry in ledger.entries] == [1]


def test_a_replay_with_another_round_config_is_charged(tmp_path: Path) -> None:
    config = digits_config()
    arrays = initial_arrays(config)
    first = train_with_persisted_state(
        train_message(arrays, 1), client_context(0, 3, tmp_path), config, train=handle_train
    )
    altered = train_with_persisted_state(
        train_message(arrays, 1, **{keys.PROXIMAL_MU: 0.5}), client_context(0, 3, tmp_path), config,
        train=handle_train,
    )
    assert altered.content[keys.METRICS][keys.EPSILON] > first.content[keys.METRICS][keys.EPSILON]
    assert len(LedgerStore(tmp_path).load("builtin:digits").entries) == 2


def test_a_new_run_key_does_not_reset_the_budget(tmp_path: Path) -> None:
    config = digits_config("num_rounds=1")
    arrays = initial_arrays(config)
    spent = []
    for run_key in ("run-a", "run-b"):
        reply = handle_train(train_message(arrays, 1, run_key=run_key), client_context(0, 3, tmp_path), config)
        spent.append(reply.content[keys.METRICS][keys.EPSILON])
    assert spent[1] > spent[0] * 1.2  # the second run composes with the first


def test_a_deleted_ledger_stops_the_client(tmp_path: Path) -> None:
    config = digits_config()
    arrays = initial_arrays(config)
    assert not handle_train(train_message(arrays, 1), client_context(0, 3, tmp_path), config).has_error()
    (tmp_path / LEDGER_FILE).unlink()
    with pytest.raises(LedgerError, match="missing.*refusing to restart"):
        handle_train(train_message(arrays, 2), client_context(0, 3, tmp_path), config)


def test_a_corrupted_ledger_stops_the_client(tmp_path: Path) -> None:
    config = digits_config()
    arrays = initial_arrays(config)
    handle_train(train_message(arrays, 1), client_context(0, 3, tmp_path), config)
    (tmp_path / LEDGER_FILE).write_text('{"format": 1, "datasets": {"x": {"entries": [{"run": 1}]}}}')
    with pytest.raises(LedgerError, match="unreadable"):
        handle_train(train_message(arrays, 2), client_context(0, 3, tmp_path), config)


def test_a_corrupted_client_state_file_is_one_clear_error(tmp_path: Path) -> None:
    config = digits_config()
    message = train_message(initial_arrays(config), 1)
    train_with_persisted_state(message, client_context(0, 3, tmp_path), config, train=handle_train)
    state_file = next(tmp_path.rglob("partition-0.state"))
    state_file.write_bytes(state_file.read_bytes()[: state_file.stat().st_size // 2])
    with pytest.raises(ClientStateError, match=str(state_file)):
        train_with_persisted_state(message, client_context(0, 3, tmp_path), config, train=handle_train)


FLOOR = PrivacyFloor(require_dp=True, max_epsilon=2.2, max_delta=1e-5, deployment=True).node_config()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (("privacy=none",), "privacy=none"),
        (("privacy.target_epsilon=8",), "privacy.target_epsilon=8.0"),
        (("privacy.target_delta=0.001",), "privacy.target_delta=0.001"),
        (("privacy.reproducible_noise=true",), "privacy.reproducible_noise=true"),
    ],
)
def test_a_server_asking_below_the_clients_floor_is_refused(
    tmp_path: Path, overrides: tuple[str, ...], named: str
) -> None:
    config = digits_config(*overrides)
    reply = handle_train(
        train_message(initial_arrays(config), 1), client_context(0, 3, tmp_path, **FLOOR), config
    )
    assert reply.has_error()
    assert reply.error.code == PRIVACY_REFUSED_CODE
    assert named in reply.error.reason
    assert not (tmp_path / LEDGER_FILE).exists()  # refused before anything was charged


def test_a_looser_accountant_cannot_stretch_the_floor(tmp_path: Path) -> None:
    """Noise calibrated with GDP's approximation spends more than 2.2 by Renyi DP: refused."""
    config = digits_config("num_rounds=1", "privacy.accountant=gdp")
    reply = handle_train(
        train_message(initial_arrays(config), 1), client_context(0, 3, tmp_path, **FLOOR), config
    )
    assert reply.has_error() and "--max-epsilon=2.2" in reply.error.reason


def test_the_floor_bounds_the_lifetime_spend_across_runs(tmp_path: Path) -> None:
    config = digits_config("num_rounds=1")
    arrays = initial_arrays(config)
    context = client_context(0, 3, tmp_path, **FLOOR)
    assert not handle_train(train_message(arrays, 1, run_key="run-a"), context, config).has_error()
    second = handle_train(train_message(arrays, 1, run_key="run-b"), context, config)
    assert second.has_error()
    assert second.error.code == PRIVACY_REFUSED_CODE
    assert "--max-epsilon=2.2" in second.error.reason


def test_the_run_budget_still_refuses_a_round_past_the_target(tmp_path: Path) -> None:
    config = digits_config("num_rounds=1")
    arrays = initial_arrays(config)
    handle_train(train_message(arrays, 1), client_context(0, 3, tmp_path), config)
    reply = handle_train(train_message(arrays, 2), client_context(0, 3, tmp_path), config)
    assert reply.error.code == BUDGET_EXHAUSTED_CODE


def test_dp_replies_carry_no_training_loss(tmp_path: Path) -> None:
    config = digits_config()
    reply = handle_train(train_message(initial_arrays(config), 1), client_context(0, 3, tmp_path), config)
    assert set(reply.content[keys.METRICS].keys()) == {keys.NUM_EXAMPLES, keys.EPSILON}


def test_a_client_with_a_floor_does_not_answer_evaluation(tmp_path: Path) -> None:
    from flwr.app import ConfigRecord, Message, MessageType, RecordDict

    config = digits_config()
    message = Message(
        content=RecordDict({keys.ARRAYS: initial_arrays(config), keys.CONFIG: ConfigRecord()}),
        dst_node_id=101,
        message_type=MessageType.EVALUATE,
    )
    reply = handle_evaluate(message, client_context(0, 3, tmp_path, **FLOOR), config)
    assert reply.error.code == PRIVACY_REFUSED_CODE


def test_reported_epsilon_matches_an_independent_accountant(tmp_path: Path) -> None:
    config = digits_config("privacy.accountant=prv")
    data = load_client_data(config, 0, 3)
    plan = plan_dp(config.privacy, num_examples=len(data.y_train), batch_size=32, local_epochs=1, num_rounds=3)
    reply = handle_train(train_message(initial_arrays(config), 1), client_context(0, 3, tmp_path), config)
    from opacus.accountants import PRVAccountant

    independent = PRVAccountant()
    independent.history = [(plan.noise_multiplier, plan.sample_rate, plan.steps_per_round)]
    assert reply.content[keys.METRICS][keys.EPSILON] == pytest.approx(
        independent.get_epsilon(delta=plan.target_delta), rel=1e-3
    )
