"""What crosses the wire: compressed messages are what gets counted, and the counted
bytes are exactly what Flower pushes and all a receiver needs to rebuild the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents, push_objects

from aureon import keys
from aureon.codecs import (
    as_numpy,
    build_codec,
    encode_weights,
    is_compressed,
    received_state_dict,
    upload_entries,
    weights_from_content,
)
from aureon.config import CompressionConfig
from aureon.federated.client import handle_train
from aureon.launch.run_config import compose_config
from aureon.models import SmallCNN, build_model
from aureon.tracking import message_wire_bytes

pytestmark = pytest.mark.usefixtures("server_identity")


def _pushed(message: Message) -> dict[str, bytes]:
    """Every object Flower would push for ``message``, by object id."""
    sent: dict[str, bytes] = {}
    push_objects(get_all_nested_objects(message), sent.__setitem__, keep_objects=True)
    return sent


def _mnist_cnn_states() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    model = SmallCNN(input_shape=(1, 28, 28), num_classes=10)
    received = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    local = {k: v + 0.01 * torch.randn_like(v) for k, v in received.items()}
    return received, local


def _reply(entries: dict, received: dict) -> Message:
    content = RecordDict({**entries, keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: 10})})
    return Message(content=content, dst_node_id=7, message_type=MessageType.TRAIN)


@pytest.mark.parametrize("upload", ["none", "fp16", "int8", "topk"])
def test_counted_bytes_are_the_pushed_bytes_and_rebuild_the_same_weights(upload: str) -> None:
    received, local = _mnist_cnn_states()
    entries = upload_entries(
        local, received, config=CompressionConfig(name=upload, upload=upload), state=RecordDict(), seed=0
    )
    message = _reply(entries, received)
    pushed = _pushed(message)
    assert message_wire_bytes(message) == sum(len(b) for b in pushed.values())

    rebuilt = inflate_object_from_contents(message.object_id, dict(pushed))
    assert isinstance(rebuilt, Message)
    reference = as_numpy(received)
    expected = weights_from_content(message.content, reference)
    got = weights_from_content(rebuilt.content, reference)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


def test_compressed_replies_are_smaller_by_the_codecs_factor() -> None:
    received, local = _mnist_cnn_states()
    sizes = {}
    for upload in ("none", "fp16", "int8", "topk"):
        config = CompressionConfig(name=upload, upload=upload, topk_ratio=0.01)
        entries = upload_entries(local, received, config=config, state=RecordDict(), seed=0)
        sizes[upload] = message_wire_bytes(_reply(entries, received))
    assert sizes["none"] / sizes["fp16"] > 1.9
    assert sizes["none"] / sizes["int8"] > 3.8
    assert sizes["none"] / sizes["topk"] > 25


def test_download_weights_decode_within_the_codecs_bound() -> None:
    received, _ = _mnist_cnn_states()
    weights = as_numpy(received)
    entries = encode_weights(build_codec("int8", seed=0), weights)
    content = RecordDict({**entries, keys.CONFIG: ConfigRecord({keys.SERVER_ROUND: 1})})
    assert is_compressed(content)
    state = received_state_dict(content, received)
    for name, value in weights.items():
        step = np.abs(value).max() / 127
        assert np.all(np.abs(state[name].numpy() - value) <= step * (1 + 1e-6))


def test_plain_weights_pass_through_untouched() -> None:
    received, _ = _mnist_cnn_states()
    content = RecordDict({keys.ARRAYS: ArrayRecord(received)})
    state = received_state_dict(content, received)
    for name, value in received.items():
        assert torch.equal(state[name], value)


def _context() -> Context:
    return Context(
        run_id=1,
        node_id=101,
        node_config={keys.NODE_PARTITION_ID: 0, keys.NODE_NUM_PARTITIONS: 2},
        state=RecordDict(),
        run_config={},
    )


def test_client_sends_topk_delta_and_keeps_the_residual_across_rounds() -> None:
    config = compose_config(
        ["dataset=digits", "features=none", "model=cnn", "num_clients=2", "privacy=none", "compression=topk",
         "compression.topk_ratio=0.05", "train.local_epochs=1"]
    )
    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=0)
    arrays = ArrayRecord(model.state_dict())
    context = _context()
    residuals = []
    for server_round in (1, 2):
        content = RecordDict(
            {keys.ARRAYS: arrays, keys.CONFIG: ConfigRecord({keys.SERVER_ROUND: server_round})}
        )
        msg = Message(content=content, dst_node_id=101, message_type=MessageType.TRAIN)
        reply = handle_train(msg, context, config)
        assert is_compressed(reply.content)
        assert reply.content[keys.COMPRESSION][keys.CODEC] == "topk"
        assert reply.content[keys.COMPRESSION][keys.PAYLOAD_KIND] == "delta"
        record = context.state.array_records[keys.STATE_RESIDUAL]
        residuals.append({k: a.numpy().copy() for k, a in record.items()})
        total = sum(a.size for a in residuals[-1].values())
        sent = reply.content[keys.ARRAYS]["indices"].numpy().size
        assert sent <= 0.05 * total + len(residuals[-1])  # ceil per tensor
    assert any(np.abs(residuals[0][k]).sum() > 0 for k in residuals[0])
    assert any(not np.array_equal(residuals[0][k], residuals[1][k]) for k in residuals[0])
