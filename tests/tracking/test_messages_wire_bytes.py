"""Counting a round's messages together gives each one's own wire bytes, shared content or not."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from aureon.tracking import message_wire_bytes
from aureon.tracking.wire import messages_wire_bytes

pytestmark = pytest.mark.usefixtures("server_identity")


def _flower_count(message: Message) -> int:
    """Every distinct object Flower pushes for ``message``, serialized on its own."""
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(message).values())


def _shared_content() -> RecordDict:
    rng = np.random.default_rng(0)
    arrays = ArrayRecord(
        {
            "w": Array(rng.normal(size=(300, 10)).astype(np.float32)),
            "b": Array(np.zeros(10, dtype=np.float32)),
            "b2": Array(np.zeros(10, dtype=np.float32)),  # identical to b: one object on the wire
        }
    )
    return RecordDict({"arrays": arrays, "config": ConfigRecord({"lr": 0.1, "server-round": 1})})


def test_messages_sharing_one_global_model_are_each_counted_in_full() -> None:
    content = _shared_content()
    messages = [Message(content, dst_node_id=node, message_type=MessageType.TRAIN) for node in (3, 70, 123_456)]
    counts = messages_wire_bytes(messages)
    assert counts == [_flower_count(m) for m in messages]
    assert counts == [message_wire_bytes(m) for m in messages]
    assert counts[0] > 300 * 10 * 4  # the model is in every message's count, not only the first's


def test_a_changed_message_is_counted_as_it_is_now() -> None:
    content = _shared_content()
    message = Message(content, dst_node_id=3, message_type=MessageType.TRAIN)
    before = message_wire_bytes(message)
    content["metrics"] = MetricRecord({"note": [0.5] * 100})
    content["arrays"]["w"] = Array(np.ones((600, 10), dtype=np.float32))
    after = messages_wire_bytes([message])[0]
    assert after == _flower_count(message)
    assert after > before + 300 * 10 * 4


def test_different_replies_counted_together_keep_their_own_sizes() -> None:
    replies = [
        Message(
            RecordDict(
                {
                    "arrays": ArrayRecord({"w": Array(np.full(size, 1.0, dtype=np.float32))}),
                    "metrics": MetricRecord({"num-examples": 5}),
                }
            ),
            dst_node_id=7,
            message_type=MessageType.TRAIN,
        )
        for size in (10, 1_000, 10)
    ]
    counts = messages_wire_bytes(replies)
    assert counts == [_flower_count(m) for m in replies]
    assert counts[0] == counts[2] < counts[1]
