"""The client refuses requests that would break the protocol's guarantees."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from aureon import keys
from aureon.secagg import (
    ClientState,
    MalformedMessage,
    ProtocolAbort,
    SecAggClient,
    SecAggServer,
    messages,
)
from tests.secagg.driver import settings

NODES = [1, 2, 3, 4, 5]


def _wrap(record: ConfigRecord) -> RecordDict:
    return RecordDict({keys.SECAGG: record})


def _until_masking(length: int = 4):
    """Server and clients after stage 2; returns the stage-3 requests too."""
    server = SecAggServer(
        settings=settings(), node_ids=NODES, server_round=7, vector_length=length + 1
    )
    clients = {n: SecAggClient() for n in NODES}
    requests = server.setup_requests()
    requests = server.receive_keys({n: _wrap(clients[n].setup(r)) for n, r in requests.items()})
    requests = server.receive_shares({n: _wrap(clients[n].share_keys(r)) for n, r in requests.items()})
    return server, clients, requests


def _until_unmasking():
    server, clients, requests = _until_masking()
    replies = {}
    for n, request in requests.items():
        clients[n].receive_shares(request)
        masked = clients[n].mask(np.zeros(4), num_examples=10)
        replies[n] = RecordDict(
            {
                keys.SECAGG: ConfigRecord({messages.ROUND: 7, messages.INDEX: clients[n].state.index}),
                keys.SECAGG_MASKED: ArrayRecord({messages.MASKED: Array(masked)}),
            }
        )
    return server, clients, server.receive_masked(replies)


def _setup_request(**changes: object) -> ConfigRecord:
    server = SecAggServer(settings=settings(), node_ids=NODES, server_round=7, vector_length=5)
    request = server.setup_requests()[1]
    for name, value in changes.items():
        request[name] = value
    return request


def test_a_threshold_that_a_minority_could_meet_is_refused() -> None:
    with pytest.raises(ProtocolAbort, match="more than half"):
        SecAggClient().setup(_setup_request(**{messages.THRESHOLD: 2}))


def test_a_neighbour_list_naming_the_client_itself_is_malformed() -> None:
    request = _setup_request()
    request[messages.NEIGHBOURS] = [request[messages.INDEX], *request[messages.NEIGHBOURS][1:]]
    with pytest.raises(MalformedMessage, match="neighbours"):
        SecAggClient().setup(request)


def test_stages_out_of_order_or_for_another_round_are_refused() -> None:
    _, clients, requests = _until_masking()
    with pytest.raises(ProtocolAbort, match="expected stage"):
        SecAggClient().share_keys(ConfigRecord({messages.ROUND: 7}))
    node, request = next(iter(requests.items()))
    request[messages.ROUND] = 8
    with pytest.raises(ProtocolAbort, match="round 8"):
        clients[node].receive_shares(request)


def test_peers_outside_the_neighbourhood_are_refused() -> None:
    server = SecAggServer(
        settings=settings(num_shares=3), node_ids=list(range(1, 8)), server_round=1, vector_length=3
    )
    client = SecAggClient()
    node, request = next(iter(server.setup_requests().items()))
    client.setup(request)
    outsider = next(i for i in range(1, 8) if i not in client.state.neighbours and i != client.state.index)
    share_request = ConfigRecord(
        {
            messages.ROUND: 1,
            messages.PEERS: [outsider, client.state.neighbours[0]],
            messages.PEER_ENCRYPTION_KEYS: [b"\x09" * 32, b"\x09" * 32],
            messages.PEER_MASK_KEYS: [b"\x09" * 32, b"\x09" * 32],
        }
    )
    with pytest.raises(ProtocolAbort, match="not this client's neighbours"):
        client.share_keys(share_request)


def test_an_altered_or_misrouted_share_is_detected() -> None:
    _, clients, requests = _until_masking()
    node, request = next(iter(requests.items()))
    blobs = list(request[messages.CIPHERTEXTS])
    altered = ConfigRecord(dict(request.items()))
    altered[messages.CIPHERTEXTS] = [blobs[0][:-1] + bytes([blobs[0][-1] ^ 1]), *blobs[1:]]
    with pytest.raises(MalformedMessage, match="unreadable"):
        SecAggClient(state=ClientState.from_record(clients[node].state.to_record())).receive_shares(altered)
    swapped = ConfigRecord(dict(request.items()))
    swapped[messages.CIPHERTEXTS] = [blobs[1], blobs[0], *blobs[2:]]
    with pytest.raises(MalformedMessage, match="unreadable"):
        clients[node].receive_shares(swapped)


def test_a_client_masks_once_per_round_and_only_finite_updates() -> None:
    _, clients, requests = _until_masking()
    node, request = next(iter(requests.items()))
    clients[node].receive_shares(request)
    with pytest.raises(ProtocolAbort, match="NaN"):
        clients[node].mask(np.array([0.0, np.nan, 0.0, 0.0]), num_examples=3)
    clients[node].mask(np.zeros(4), num_examples=3)
    with pytest.raises(ProtocolAbort, match="masks once per round"):
        clients[node].mask(np.ones(4), num_examples=3)


def test_unmasking_refuses_to_reveal_both_shares_of_one_client() -> None:
    _, clients, requests = _until_unmasking()
    node, request = next(iter(requests.items()))
    both = ConfigRecord(dict(request.items()))
    other = next(i for i in request[messages.SURVIVORS] if i != clients[node].state.index)
    both[messages.DROPPED] = [other]
    with pytest.raises(ProtocolAbort, match="both surviving and dropped"):
        clients[node].unmask(both)


def test_unmasking_happens_once_and_needs_threshold_survivors() -> None:
    _, clients, requests = _until_unmasking()
    node, request = next(iter(requests.items()))
    index = clients[node].state.index
    few = ConfigRecord(dict(request.items()))
    few[messages.SURVIVORS] = [index, next(i for i in request[messages.SURVIVORS] if i != index)]
    with pytest.raises(ProtocolAbort, match="fewer than the threshold"):
        clients[node].unmask(few)
    absent = ConfigRecord(dict(request.items()))
    absent[messages.SURVIVORS] = [i for i in request[messages.SURVIVORS] if i != index]
    with pytest.raises(ProtocolAbort, match="not listed among the survivors"):
        clients[node].unmask(absent)
    clients[node].unmask(request)
    with pytest.raises(ProtocolAbort, match="expected stage"):
        clients[node].unmask(request)


def test_client_state_round_trips_through_a_config_record() -> None:
    _, clients, _ = _until_masking()
    state = next(iter(clients.values())).state
    assert ClientState.from_record(state.to_record()) == state
    assert ClientState.from_record(None) == ClientState()


def test_keys_prepared_ahead_are_the_ones_the_next_round_uses() -> None:
    client = SecAggClient()
    advert = client.prepare(2)
    request = _setup_request(**{messages.ROUND: 2})
    reply = client.setup(request, prepared=True)
    for name in (messages.ENCRYPTION_KEY, messages.MASK_KEY, messages.SEED_COMMITMENT):
        assert reply[name] == advert[name]
    assert client.state.prepared_round == -1  # consumed
    with pytest.raises(ProtocolAbort, match="holds keys for round -1"):
        SecAggClient().setup(request, prepared=True)
    with pytest.raises(ProtocolAbort, match="later round"):
        client.prepare(1)


def test_keys_prepared_during_a_round_survive_its_unmasking() -> None:
    _, clients, requests = _until_unmasking()
    node, request = next(iter(requests.items()))
    advert = clients[node].prepare(8)
    clients[node].unmask(request)
    state = clients[node].state
    assert state.prepared_round == 8 and state.seed == b""  # this round's secrets are gone
    reply = clients[node].setup(_setup_request(**{messages.ROUND: 8}), prepared=True)
    assert reply[messages.MASK_KEY] == advert[messages.MASK_KEY]
