"""The client's protocol state survives ``context.state`` field by field, and a damaged one is refused."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from flwr.app import ConfigRecord, ConfigRecordValues

from aureon.secagg import ClientState
from aureon.secagg.errors import MalformedMessage

NON_DEFAULT: dict[object, object] = {
    int: 7,
    float: 0.5,
    bytes: b"\x07" * 4,
    list[int]: [3, 5],
    list[bytes]: [b"a", b"b"],
}


def _every_field_set() -> ClientState:
    hints = typing.get_type_hints(ClientState)
    return ClientState(**{f.name: NON_DEFAULT[hints[f.name]] for f in dataclasses.fields(ClientState)})


def test_every_field_round_trips_through_a_config_record() -> None:
    state = _every_field_set()
    assert all(getattr(state, f.name) != getattr(ClientState(), f.name) for f in dataclasses.fields(state))
    assert ClientState.from_record(state.to_record()) == state


def test_a_missing_field_keeps_its_default() -> None:
    record = _every_field_set().to_record()
    del record["last_round"]
    assert ClientState.from_record(record).last_round == ClientState().last_round


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("stage", "3", "int"),
        ("stage", True, "int"),
        ("clipping_range", 1, "float"),
        ("seed", "secret-seed", "bytes"),
        ("peers", ["1", "2"], "a list of int"),
        ("seed_shares", b"secret-share", "a list of bytes"),
    ],
)
def test_a_field_of_the_wrong_kind_is_refused_without_echoing_it(
    name: str, value: ConfigRecordValues, expected: str
) -> None:
    record = ConfigRecord(dict(_every_field_set().to_record().items()))
    record[name] = value
    with pytest.raises(MalformedMessage, match=f"field '{name}' of the kept client state must be {expected}") as error:
        ClientState.from_record(record)
    assert "secret" not in str(error.value)
