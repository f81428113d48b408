"""Malformed replies in every stage are rejected, logged and counted; the round goes on."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from aureon import keys
from aureon.exceptions import SecureAggregationError
from aureon.secagg import SecAggServer, messages, shamir
from tests.secagg.driver import plain_weighted_sum, run_protocol, settings

NODES = [11, 22, 33, 44, 55]
VICTIM = 22
SERVER_STAGE = {
    "keys": "advertise-keys",
    "shares": "share-keys",
    "masked": "masked-input",
    "unmask": "unmask",
}


def _record(content: RecordDict) -> ConfigRecord:
    return content.config_records[keys.SECAGG]


def _set(name: str, value: object) -> Callable[[RecordDict], RecordDict]:
    def mutate(content: RecordDict) -> RecordDict:
        _record(content)[name] = value
        return content

    return mutate


def _drop_field(name: str) -> Callable[[RecordDict], RecordDict]:
    def mutate(content: RecordDict) -> RecordDict:
        del _record(content)[name]
        return content

    return mutate


def _other_index(content: RecordDict) -> RecordDict:
    record = _record(content)
    record[messages.INDEX] = record[messages.INDEX] % len(NODES) + 1
    return content


def _to_itself(content: RecordDict) -> RecordDict:
    record = _record(content)
    record[messages.DESTINATIONS] = [record[messages.INDEX], *record[messages.DESTINATIONS][1:]]
    return content


def _empty(_content: RecordDict) -> RecordDict:
    return RecordDict()


def _masked_as(values: Callable[[np.ndarray], np.ndarray]) -> Callable[[RecordDict], RecordDict]:
    def mutate(content: RecordDict) -> RecordDict:
        array = content.array_records[keys.SECAGG_MASKED][messages.MASKED].numpy()
        content[keys.SECAGG_MASKED] = ArrayRecord({messages.MASKED: Array(values(array))})
        return content

    return mutate


def _first_share(name: str, data: bytes) -> Callable[[RecordDict], RecordDict]:
    def mutate(content: RecordDict) -> RecordDict:
        shares = list(_record(content)[name])
        shares[0] = data
        _record(content)[name] = shares
        return content

    return mutate


CASES = [
    # stage "keys": the advertise-keys reply
    ("keys", "no protocol record", _empty),
    ("keys", "wrong round", _set(messages.ROUND, 999)),
    ("keys", "index of another client", _other_index),
    ("keys", "short public key", _set(messages.MASK_KEY, b"\x01" * 31)),
    ("keys", "key of the wrong type", _set(messages.ENCRYPTION_KEY, "not bytes")),
    ("keys", "missing commitment", _drop_field(messages.SEED_COMMITMENT)),
    # stage "shares": encrypted shares
    ("shares", "no protocol record", _empty),
    ("shares", "missing destinations", _drop_field(messages.DESTINATIONS)),
    ("shares", "duplicate destinations", _set(messages.DESTINATIONS, [1, 1])),
    ("shares", "a share addressed to itself", _to_itself),
    ("shares", "ciphertext count mismatch", _set(messages.CIPHERTEXTS, [b"x" * 172])),
    ("shares", "truncated ciphertexts", _set(messages.CIPHERTEXTS, [b"x" * 10] * 4)),
    ("shares", "boolean round", _set(messages.ROUND, True)),
    # stage "masked": the masked input
    ("masked", "no masked array", lambda c: RecordDict({keys.SECAGG: _record(c)})),
    ("masked", "float32 instead of uint32", _masked_as(lambda a: a.astype(np.float32))),
    ("masked", "too short", _masked_as(lambda a: a[:-1])),
    ("masked", "values beyond the modulus", _masked_as(lambda a: a | np.uint32(1 << 31))),
    ("masked", "2-d array", _masked_as(lambda a: a.reshape(1, -1))),
    ("masked", "index of another client", _other_index),
    # stage "unmask": the shares that remove masks
    ("unmask", "no protocol record", _empty),
    ("unmask", "shares for other owners", _set(messages.SEED_SHARE_OWNERS, [1])),
    ("unmask", "share of the wrong size", _first_share(messages.SEED_SHARES, b"\x00" * 10)),
    ("unmask", "share outside the field", _first_share(messages.SEED_SHARES, b"\xff" * shamir.SHARE_BYTES)),
    ("unmask", "list of ints for shares", _set(messages.SEED_SHARES, [1, 2, 3])),
]


@pytest.mark.parametrize("stage, what, mutate", CASES, ids=[f"{s}-{w}" for s, w, _ in CASES])
def test_a_malformed_reply_is_rejected_and_the_others_are_summed(
    stage: str, what: str, mutate: Callable[[RecordDict], RecordDict], caplog: pytest.LogCaptureFixture
) -> None:
    config = settings(modulus_bits=31 if "modulus" in what else 32)
    rng = np.random.default_rng(0)
    updates = {n: rng.uniform(-1, 1, 16) for n in NODES}
    weights = {n: 100 + n for n in NODES}

    def tamper(at: str, node: int, content: RecordDict) -> RecordDict:
        return mutate(content) if (at, node) == (stage, VICTIM) else content

    result, run = run_protocol(updates, weights, config=config, tamper=tamper)

    rejected = run.server.rejections
    assert [(r.node_id, r.stage) for r in rejected] == [(VICTIM, SERVER_STAGE[stage])]
    assert rejected[0].reason
    assert "rejected the reply of node 22" in caplog.text
    # a client rejected before its masked input arrived is left out; after, its input counts
    survivors = NODES if stage == "unmask" else [n for n in NODES if n != VICTIM]
    expected = plain_weighted_sum(updates, weights, survivors, config)
    assert result.contributors == survivors
    assert np.max(np.abs(result.weighted_sum - expected)) <= result.sum_error_bound * (1 + 1e-9)


def test_stages_called_out_of_order_are_refused() -> None:
    server = SecAggServer(settings=settings(), node_ids=NODES, server_round=1, vector_length=3)
    with pytest.raises(SecureAggregationError, match="out of order"):
        server.receive_keys({})
    server.setup_requests()
    with pytest.raises(SecureAggregationError, match="out of order"):
        server.receive_masked({})


def test_unexpected_senders_in_a_stage_are_rejected_not_trusted() -> None:
    server = SecAggServer(settings=settings(), node_ids=NODES, server_round=1, vector_length=3)
    server.setup_requests()
    with pytest.raises(SecureAggregationError, match="below the threshold"):
        server.receive_keys({999: RecordDict(), 1234: RecordDict()})
    assert [r.node_id for r in server.rejections] == [999, 1234]
    assert all("no request" in r.reason for r in server.rejections)


def test_a_corrupted_share_is_outvoted_when_spare_shares_arrived() -> None:
    rng = np.random.default_rng(2)
    updates = {n: rng.uniform(-1, 1, 8) for n in NODES}
    weights = {n: 50 for n in NODES}

    def tamper(at: str, node: int, content: RecordDict) -> RecordDict:
        if (at, node) == ("unmask", VICTIM):
            shares = list(_record(content)[messages.SEED_SHARES])
            shares[0] = shamir.to_bytes((shamir.from_bytes(shares[0]) + 1) % shamir.PRIME)
            _record(content)[messages.SEED_SHARES] = shares
        return content

    result, _ = run_protocol(updates, weights, tamper=tamper)
    expected = plain_weighted_sum(updates, weights, NODES, settings())
    assert np.max(np.abs(result.weighted_sum - expected)) <= result.sum_error_bound * (1 + 1e-9)


def test_a_corrupted_share_without_spares_fails_the_round_clearly() -> None:
    rng = np.random.default_rng(3)
    updates = {n: rng.uniform(-1, 1, 8) for n in NODES}
    weights = {n: 50 for n in NODES}

    def tamper(at: str, node: int, content: RecordDict) -> RecordDict:
        if (at, node) == ("unmask", VICTIM):
            shares = list(_record(content)[messages.SEED_SHARES])
            shares = [shamir.to_bytes((shamir.from_bytes(s) + 1) % shamir.PRIME) for s in shares]
            _record(content)[messages.SEED_SHARES] = shares
        return content

    silent = {44: "unmask", 55: "unmask"}  # exactly 3 = threshold responders remain
    with pytest.raises(SecureAggregationError, match="match its public commitment"):
        run_protocol(updates, weights, tamper=tamper, silent_from=silent)
