"""Attacks on secure aggregation by a curious or malicious server and by a malicious client.

Each test plays one attack against the real state machines (and, where it
matters, the real ClientApp handlers and server wrapper over an in-process
grid) and checks that it is refused, counted, or detected.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from aureon import keys
from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.secagg import (
    ClientState,
    ImplausibleAggregate,
    ProtocolAbort,
    SecAggClient,
    SecAggServer,
    graph,
    messages,
)
from aureon.secagg.handlers import handle_setup, handle_share_keys, handle_unmask
from aureon.secagg.strategy import SecureAggregation
from aureon.strategies import build_server_strategy, strategy_chain
from aureon.tracking import RoundLog
from tests.inprocess_grid import InProcessGrid
from tests.secagg.driver import plain_weighted_sum, run_protocol, settings

pytestmark = pytest.mark.usefixtures("server_identity")  # messages are built as a ServerApp does

NODES = [11, 22, 33, 44, 55]
VICTIM = 33
BASE = [
    "dataset=digits",
    "model=logreg",
    "privacy=none",
    "num_clients=5",
    "train.local_epochs=1",
    "train.batch_size=64",
    "train.lr=0.5",
    "secure_aggregation=secagg_plus",
]


def _inputs(seed: int = 0, length: int = 32) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    rng = np.random.default_rng(seed)
    return {n: rng.uniform(-1, 1, length) for n in NODES}, {n: 100 + n for n in NODES}


def _wrap(record: ConfigRecord) -> RecordDict:
    return RecordDict({keys.SECAGG: record})


def _context(state: RecordDict | None = None) -> Context:
    return Context(run_id=1, node_id=7, node_config={}, state=state or RecordDict(), run_config={})


def _message(message_type: str, content: RecordDict) -> Message:
    return Message(content, dst_node_id=7, message_type=message_type, group_id="1")


# ------------------------------------------------- finding 1: one round set up twice
def test_a_second_setup_of_a_masked_round_is_refused_so_no_second_sum_isolates_a_client() -> None:
    updates, weights = _inputs()
    first, run = run_protocol(updates, weights, server_round=1)
    assert first.contributors == NODES
    without_victim = {n: u for n, u in updates.items() if n != VICTIM}

    # the same clients: every one of them refuses the second setup, so no sum comes out
    with pytest.raises(ProtocolAbort, match="second setup of round 1"):
        run_protocol(without_victim, weights, server_round=1, clients=run.clients)
    replay = SecAggServer(settings=settings(), node_ids=sorted(without_victim), server_round=1, vector_length=33)
    for node, request in replay.setup_requests().items():
        with pytest.raises(ProtocolAbort, match="second setup of round 1"):
            run.clients[node].setup(request)
    # an earlier round is refused as well: rounds only move forward
    stale = SecAggServer(settings=settings(), node_ids=sorted(without_victim), server_round=0, vector_length=33)
    node, request = next(iter(stale.setup_requests().items()))
    with pytest.raises(ProtocolAbort, match="earlier round 0"):
        run.clients[node].setup(request)

    # what the refusal prevents: clients without that memory hand over the victim's update
    second, _ = run_protocol(without_victim, weights, server_round=1)
    isolated = (first.weighted_sum - second.weighted_sum) * settings().max_weight / weights[VICTIM]
    bound = (first.sum_error_bound + second.sum_error_bound) * settings().max_weight / weights[VICTIM]
    assert np.max(np.abs(isolated - updates[VICTIM])) <= bound


def test_a_restarted_client_refuses_a_round_it_set_up_before_it_restarted() -> None:
    updates, weights = _inputs(seed=1)
    _, run = run_protocol(updates, weights, server_round=4)
    kept = run.clients[VICTIM].progress()  # what the ClientApp keeps under STATE_SECAGG_PROGRESS

    # a restarted process that read the progress back refuses the setup itself
    restarted = SecAggClient()
    restarted.remember(kept)
    request = SecAggServer(settings=settings(), node_ids=NODES, server_round=4, vector_length=33)
    with pytest.raises(ProtocolAbort, match="second setup of round 4"):
        restarted.setup(request.setup_requests()[VICTIM])

    # one that set up the round before reading it back refuses to mask under that second setup
    server = SecAggServer(settings=settings(), node_ids=NODES, server_round=4, vector_length=33)
    clients = {n: SecAggClient() for n in NODES}
    requests = server.receive_keys({n: _wrap(clients[n].setup(r)) for n, r in server.setup_requests().items()})
    requests = server.receive_shares({n: _wrap(clients[n].share_keys(r)) for n, r in requests.items()})
    clients[VICTIM].receive_shares(requests[VICTIM])
    clients[VICTIM].remember(kept)
    with pytest.raises(ProtocolAbort, match="not this client's only setup"):
        clients[VICTIM].mask(updates[VICTIM], num_examples=weights[VICTIM])


def test_through_the_client_app_a_second_setup_is_an_error_reply_and_the_progress_outlives_the_secrets() -> None:
    server = SecAggServer(settings=settings(), node_ids=NODES, server_round=3, vector_length=9)
    request = server.setup_requests()[VICTIM]
    context = _context()
    first = handle_setup(_message(keys.SECAGG_SETUP, _wrap(request)), context)
    assert not first.has_error()
    again = SecAggServer(settings=settings(), node_ids=NODES, server_round=3, vector_length=9)
    second = again.setup_requests()[VICTIM]
    refused = handle_setup(_message(keys.SECAGG_SETUP, _wrap(second)), context)
    assert refused.has_error() and "second setup of round 3" in refused.error.reason
    # the refusal wiped this round's secrets but not the record of the setup
    assert ClientState.from_record(context.state.config_records[keys.STATE_SECAGG]).seed == b""
    progress = context.state.config_records[keys.STATE_SECAGG_PROGRESS]
    assert progress["last-round"] == 3
    # a restarted process sees only what was persisted: the progress record
    restarted = _context(RecordDict({keys.STATE_SECAGG_PROGRESS: progress}))
    refused = handle_setup(_message(keys.SECAGG_SETUP, _wrap(second)), restarted)
    assert refused.has_error() and "second setup of round 3" in refused.error.reason


def test_a_retransmitted_setup_gets_the_same_keys_and_is_not_a_second_setup() -> None:
    server = SecAggServer(settings=settings(), node_ids=NODES, server_round=2, vector_length=9)
    request = server.setup_requests()[VICTIM]
    client = SecAggClient()
    reply = client.setup(request)
    before = client.state.to_record()
    assert client.setup(ConfigRecord(dict(request.items()))) == reply
    assert client.state.to_record() == before
    other = SecAggServer(settings=settings(), node_ids=NODES, server_round=2, vector_length=9)
    with pytest.raises(ProtocolAbort, match="second setup of round 2"):
        client.setup(other.setup_requests()[VICTIM])


def test_a_server_that_runs_a_finished_round_again_gets_refusals_and_records_them(tmp_path: Path) -> None:
    """A server restarted (or malicious) re-runs round 1 against clients that took part in it."""
    config = compose_config([*BASE, "num_rounds=1"])
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    results = run_server(grid, config, tmp_path)
    assert results["rounds"][0]["aggregation_error"] is None

    round_log = RoundLog()
    again = build_server_strategy(config, round_log=round_log).strategy  # the stack run_server drives
    arrays = ArrayRecord({"w": Array(np.zeros((64, 10), dtype=np.float32))})
    train_messages = list(again.configure_train(1, arrays, ConfigRecord({keys.SERVER_ROUND: 1}), grid))
    assert train_messages == []  # nothing to train: the round could not be set up
    events = round_log.events(1)
    assert sorted(f.node_id for f in events.failures) == sorted(grid.node_ids)
    assert all("second setup of round 1" in f.reason for f in events.failures)
    assert events.error is not None and "below the threshold" in events.error


# ---------------------------------------------------- out-of-order and stale messages
def test_out_of_order_requests_are_refused_with_a_reason() -> None:
    server = SecAggServer(settings=settings(), node_ids=NODES, server_round=5, vector_length=9)
    clients = {n: SecAggClient() for n in NODES}
    with pytest.raises(ProtocolAbort, match="expected stage"):
        clients[VICTIM].share_keys(ConfigRecord({messages.ROUND: 5}))  # before any setup
    shares = server.receive_keys({n: _wrap(clients[n].setup(r)) for n, r in server.setup_requests().items()})
    with pytest.raises(ProtocolAbort, match="expected stage"):
        clients[VICTIM].unmask(ConfigRecord({messages.ROUND: 5, messages.SURVIVORS: [], messages.DROPPED: []}))
    with pytest.raises(ProtocolAbort, match="masks once per round, after stage 2"):
        clients[VICTIM].mask(np.zeros(8), num_examples=1)  # before the shares arrived
    with pytest.raises(ProtocolAbort, match="expected stage"):
        clients[VICTIM].receive_shares(ConfigRecord({messages.ROUND: 5}))  # stage 3 before stage 2
    clients[VICTIM].share_keys(shares[VICTIM])  # the right order still works

    # through the ClientApp: an Error reply naming the reason, as the server records it
    reply = handle_unmask(_message(keys.SECAGG_UNMASK, _wrap(ConfigRecord({messages.ROUND: 5}))), _context())
    assert reply.has_error() and "arrived at stage 0, expected stage 4" in reply.error.reason


def test_stale_round_messages_are_refused_by_clients_and_rejected_by_the_server() -> None:
    old = SecAggServer(settings=settings(), node_ids=NODES, server_round=1, vector_length=9)
    new = SecAggServer(settings=settings(), node_ids=NODES, server_round=2, vector_length=9)
    setup = new.setup_requests()[VICTIM]
    client = SecAggClient()
    stale_share_request = ConfigRecord({messages.ROUND: 1, messages.PEERS: [], messages.PEER_ENCRYPTION_KEYS: [],
                                        messages.PEER_MASK_KEYS: []})
    client.setup(setup)
    with pytest.raises(ProtocolAbort, match="a stale round's request"):
        client.share_keys(stale_share_request)
    with pytest.raises(ProtocolAbort, match="earlier round 1"):
        client.setup(old.setup_requests()[VICTIM])
    context = _context()
    handle_setup(_message(keys.SECAGG_SETUP, _wrap(setup)), context)
    reply = handle_share_keys(_message(keys.SECAGG_SHARE_KEYS, _wrap(stale_share_request)), context)
    assert reply.has_error() and "stale" in reply.error.reason

    # a client answering with an old round's reply is rejected and the rejection recorded
    updates, weights = _inputs(seed=2)

    def replay_old_round(stage: str, node: int, content: RecordDict) -> RecordDict:
        if (stage, node) == ("shares", VICTIM):
            content.config_records[keys.SECAGG][messages.ROUND] = 0
        return content

    result, run = run_protocol(updates, weights, server_round=1, tamper=replay_old_round)
    (rejection,) = run.server.rejections
    assert rejection.node_id == VICTIM and "stale" in rejection.reason
    assert VICTIM not in result.contributors


# --------------------------------------------- finding 2: a tampered masked input
def _tamper_masked(coordinate: int, offset: int):
    def tamper(stage: str, node: int, content: RecordDict) -> RecordDict:
        if (stage, node) != ("masked", VICTIM):
            return content
        values = content.array_records[keys.SECAGG_MASKED][messages.MASKED].numpy().copy()
        values[coordinate] = (int(values[coordinate]) + offset) % 2**32
        content[keys.SECAGG_MASKED] = ArrayRecord({messages.MASKED: Array(values)})
        return content

    return tamper


@pytest.mark.parametrize(
    "coordinate, offset, reason",
    [(3, 1 << 28, "outside the clipping range"), (-1, 1 << 24, "summed weight"), (-1, -1000, "summed weight")],
)
def test_a_tampered_masked_input_is_detected(coordinate: int, offset: int, reason: str) -> None:
    updates, weights = _inputs(seed=3)
    with pytest.raises(ImplausibleAggregate, match=reason):
        run_protocol(updates, weights, tamper=_tamper_masked(coordinate, offset))


@hsettings(max_examples=25, deadline=None)
@given(coordinate=st.integers(min_value=0, max_value=7), offset=st.integers(min_value=1, max_value=2**32 - 1))
def test_a_tamper_that_passes_the_check_leaves_the_mean_inside_the_clipping_range(coordinate, offset) -> None:
    updates, weights = _inputs(seed=4, length=8)
    try:
        result, _ = run_protocol(updates, weights, tamper=_tamper_masked(coordinate, offset))
    except ImplausibleAggregate:
        return
    assert np.max(np.abs(result.mean())) <= settings().clipping_range + result.mean_error_bound() + 1e-9
    untouched = [i for i in range(8) if i != coordinate]
    expected = plain_weighted_sum(updates, weights, NODES, settings())
    assert np.allclose(result.weighted_sum[untouched], expected[untouched], atol=result.sum_error_bound)


def test_a_tampered_round_keeps_the_previous_model_and_records_why(tmp_path: Path) -> None:
    config = compose_config([*BASE, "num_rounds=1"])
    victim = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5).node_ids[2]

    def tamper(message: Message, reply: Message) -> Message | None:
        if message.metadata.message_type == keys.SECAGG_TRAIN and message.metadata.dst_node_id == victim:
            values = reply.content.array_records[keys.SECAGG_MASKED][messages.MASKED].numpy().copy()
            values[5] = (int(values[5]) + (1 << 30)) % 2**32
            reply.content[keys.SECAGG_MASKED] = ArrayRecord({messages.MASKED: Array(values)})
        return reply

    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5, intercept=tamper)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    results = run_server(grid, config, tmp_path)
    (record,) = results["rounds"]
    assert "not one honest inputs can produce" in record["aggregation_error"]
    assert record["test_accuracy"] == results["initial"]["test_accuracy"]


# -------------------------------------------- finding 3: a predictable neighbour graph
def test_the_graph_differs_across_setups_with_the_same_run_seed_and_clients_verify_it() -> None:
    config = compose_config([*BASE, "num_clients=30", "secure_aggregation.num_shares=5"])
    nodes = list(range(100, 130))
    graphs = []
    for _ in range(2):  # two servers built from the same config, hence the same run seed
        stack = build_server_strategy(config, round_log=RoundLog()).strategy
        wrapper = next(part for part in strategy_chain(stack) if isinstance(part, SecureAggregation))
        wrapper._layout = _layout(8)  # what configure_train derives from the global model
        protocol = wrapper._protocol(1, nodes)
        graphs.append((protocol.graph_seed, {protocol.node_of[i]: {protocol.node_of[j] for j in peers}
                                             for i, peers in protocol.neighbours.items()}))
        for request in protocol.setup_requests().values():
            SecAggClient().setup(request)  # each client rebuilds its neighbours from the seed
            seed = request[messages.GRAPH_SEED]
            assert seed == protocol.graph_seed
            assert request[messages.NEIGHBOURS] == graph.neighbours(
                request[messages.INDEX], graph_seed=seed, num_clients=30, neighbourhood_size=5
            )
    (seed_a, links_a), (seed_b, links_b) = graphs
    assert seed_a != seed_b and links_a != links_b


def test_a_client_refuses_neighbours_other_than_the_committed_graph_gives() -> None:
    server = SecAggServer(settings=settings(num_shares=3), node_ids=list(range(1, 10)), server_round=1, vector_length=3)
    request = next(iter(server.setup_requests().values()))
    outsider = next(i for i in range(1, 10) if i not in request[messages.NEIGHBOURS] and i != request[messages.INDEX])
    lying = ConfigRecord(dict(request.items()))
    lying[messages.NEIGHBOURS] = [request[messages.NEIGHBOURS][0], outsider]
    with pytest.raises(ProtocolAbort, match="graph seed it committed to"):
        SecAggClient().setup(lying)
    other_seed = ConfigRecord(dict(request.items()))
    other_seed[messages.GRAPH_SEED] = next(
        seed
        for seed in iter(graph.draw_graph_seed, None)
        if graph.neighbours(request[messages.INDEX], graph_seed=seed, num_clients=9, neighbourhood_size=3)
        != request[messages.NEIGHBOURS]
    )
    with pytest.raises(ProtocolAbort, match="graph seed it committed to"):
        SecAggClient().setup(other_seed)


def _layout(size: int):
    from aureon.secagg.vector import VectorLayout

    return VectorLayout(names=("w",), shapes=((size,),), dtypes=("float32",))
