"""The server wrapper: encodes what goes out, decodes what comes back, and the byte
counter outside it sees the encoded messages."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

from aureon import keys
from aureon.codecs import is_compressed, weights_from_content
from aureon.federated.client import handle_train
from aureon.launch.run_config import compose_config
from aureon.models import build_model
from aureon.strategies import CompressedTransport, RoundRecorder, build_strategy, with_compression
from aureon.strategies.compressed_transport import MALFORMED_UPDATE_CODE
from aureon.tracking import RoundLog, message_wire_bytes

pytestmark = pytest.mark.usefixtures("server_identity")


class _Grid:
    """Just enough of a Grid for a strategy to sample nodes."""

    def __init__(self, node_ids: list[int]) -> None:
        self.node_ids = node_ids

    def get_node_ids(self) -> list[int]:
        return list(self.node_ids)


def _context(node_id: int, partition_id: int) -> Context:
    return Context(
        run_id=1,
        node_id=node_id,
        node_config={keys.NODE_PARTITION_ID: partition_id, keys.NODE_NUM_PARTITIONS: 2},
        state=RecordDict(),
        run_config={},
    )


def _round(compression: str, *extra: str):
    config = compose_config(
        ["dataset=digits", "features=none", "model=cnn", "num_clients=2", "privacy=none", "train.local_epochs=1",
         f"compression={compression}", *extra]
    )
    inner = build_strategy(config.strategy, num_clients=2)
    log = RoundLog()
    wrapped = with_compression(inner, config.compression, seed=config.seed, round_log=log)
    recorder = RoundRecorder(wrapped, round_log=log)
    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=0)
    arrays = ArrayRecord(model.state_dict())
    messages = list(recorder.configure_train(1, arrays, ConfigRecord(), _Grid([11, 12])))
    contexts = {11: _context(11, 0), 12: _context(12, 1)}
    replies = [handle_train(m, contexts[m.metadata.dst_node_id], config) for m in messages]
    aggregated, _ = recorder.aggregate_train(1, replies)
    events = log.events(1)
    clients, failures = events.clients, events.reply_failures + events.failures
    return config, wrapped, arrays, messages, replies, aggregated, clients, failures


def test_none_leaves_the_strategy_unwrapped() -> None:
    config = compose_config(["compression=none"])
    inner = build_strategy(config.strategy, num_clients=2)
    assert with_compression(inner, config.compression, seed=0, round_log=RoundLog()) is inner


@pytest.mark.parametrize("compression", ["fp16", "int8", "topk"])
def test_a_compressed_round_counts_encoded_bytes_and_aggregates_plain_weights(
    compression: str,
) -> None:
    _, wrapped, arrays, messages, replies, aggregated, clients, failures = _round(compression)
    assert isinstance(wrapped, CompressedTransport)
    assert not failures and len(clients) == 2
    assert all(is_compressed(m.content) for m in messages)
    assert all(is_compressed(r.content) for r in replies)
    by_node = {r.metadata.src_node_id: message_wire_bytes(r) for r in replies}
    down = {m.metadata.dst_node_id: message_wire_bytes(m) for m in messages}
    for client in clients:
        assert client.bytes_up == by_node[client.node_id]
        assert client.bytes_down == down[client.node_id]
    plain = sum(a.numpy().nbytes for a in arrays.values())
    assert all(c.bytes_up < plain and c.bytes_down < plain for c in clients)
    assert aggregated is not None
    assert set(aggregated.keys()) == set(arrays.keys())
    moved = sum(
        float(np.abs(aggregated[k].numpy() - arrays[k].numpy()).sum()) for k in arrays.keys()
    )
    assert moved > 0


def test_the_inner_strategy_averages_the_decoded_client_models() -> None:
    """Upload fp16, download none: the aggregate is FedAvg of base + decoded deltas."""
    _, _, arrays, messages, replies, aggregated, _, _ = _round(
        "none", "compression.upload=fp16", "compression.error_feedback=false"
    )
    assert not any(is_compressed(m.content) for m in messages)
    reference = {k: a.numpy() for k, a in arrays.items()}
    weights = [weights_from_content(r.content, reference) for r in replies]
    counts = [float(r.content[keys.METRICS][keys.NUM_EXAMPLES]) for r in replies]
    for name in reference:
        mean = sum(c * w[name] for c, w in zip(counts, weights, strict=True)) / sum(counts)
        np.testing.assert_allclose(aggregated[name].numpy(), mean, atol=1e-6)


def test_an_undecodable_reply_becomes_a_failure_not_a_crash() -> None:
    config = compose_config(["dataset=digits", "features=none", "model=cnn", "num_clients=2", "compression=int8"])
    inner = build_strategy(config.strategy, num_clients=2)
    wrapped = with_compression(inner, config.compression, seed=0, round_log=RoundLog())
    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=0)
    arrays = ArrayRecord(model.state_dict())
    messages = list(wrapped.configure_train(1, arrays, ConfigRecord(), _Grid([11, 12])))
    broken = RecordDict(
        {
            keys.ARRAYS: ArrayRecord(),  # the int8 codes and scales are missing
            keys.COMPRESSION: ConfigRecord({keys.CODEC: "int8", keys.PAYLOAD_KIND: "delta"}),
        }
    )
    reply = Message(content=broken, reply_to=messages[0])
    decoded = wrapped._decode(reply, {k: a.numpy() for k, a in arrays.items()})
    assert decoded.has_error()
    assert "unreadable" in decoded.error.reason
    assert decoded.error.code == MALFORMED_UPDATE_CODE
