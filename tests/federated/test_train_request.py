"""TrainRequest: the server's train config, read and checked before anything trains."""

from __future__ import annotations

import pytest

from aureon import keys
from aureon.config import TrainConfig
from aureon.federated.train_request import HONOURED_KEYS, TrainRequest, TrainRequestError


def test_an_empty_request_leaves_the_clients_own_settings() -> None:
    own = TrainConfig(lr=0.1, lr_decay=0.5, local_epochs=2)
    request = TrainRequest.from_record({keys.SERVER_ROUND: 3})
    assert request.train_config(own) == own.for_round(3)  # the client's own schedule: 0.1 * 0.5**2
    assert request.rounds(7) == 7
    assert request.proximal_mu == 0.0


def test_the_servers_customary_keys_override_the_clients_own() -> None:
    own = TrainConfig(lr=0.1, lr_decay=0.5, local_epochs=2, batch_size=16)
    request = TrainRequest.from_record(
        {keys.SERVER_ROUND: 3, keys.LR: 0.01, keys.LOCAL_EPOCHS: 4, keys.NUM_ROUNDS: 9, "batch-size": 999}
    )
    effective = request.train_config(own)
    assert (effective.lr, effective.local_epochs, effective.batch_size) == (0.01, 4, 16)  # server lr: no decay
    assert request.rounds(7) == 9
    assert set(HONOURED_KEYS) >= {keys.LR, keys.LOCAL_EPOCHS, keys.NUM_ROUNDS, keys.SERVER_ROUND}


def test_integral_floats_count_as_integers() -> None:
    request = TrainRequest.from_record({keys.LOCAL_EPOCHS: 2.0, keys.NUM_ROUNDS: 3.0, keys.LR: 1})
    assert (request.local_epochs, request.num_rounds, request.lr) == (2, 3, 1.0)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        (keys.NUM_ROUNDS, 0, "an integer in [1,"),
        (keys.NUM_ROUNDS, 2.5, "an integer in [1,"),
        (keys.NUM_ROUNDS, True, "an integer in [1,"),
        (keys.LOCAL_EPOCHS, "3", "an integer >= 1"),
        (keys.LOCAL_EPOCHS, 0, "an integer >= 1"),
        (keys.LR, 0.0, "a finite number > 0"),
        (keys.LR, float("nan"), "a finite number > 0"),
        (keys.LR, "0.1", "a finite number > 0"),
        (keys.PROXIMAL_MU, -1.0, "a finite number >= 0"),
        (keys.SERVER_ROUND, -1, "an integer >= 0"),
        (keys.RUN_KEY, 5, "a string"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key_the_value_and_what_was_expected(
    key: str, value: object, expected: str
) -> None:
    with pytest.raises(TrainRequestError) as error:
        TrainRequest.from_record({key: value})
    assert f"train config {key!r} must be {expected}" in str(error.value)
    assert repr(value) in str(error.value)
