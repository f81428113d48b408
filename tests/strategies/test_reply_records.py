"""The wrappers' direct reads of a reply's records agree with Flower's views; the sum order is kept."""

from __future__ import annotations

import random

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MessageType, MetricRecord, RecordDict

from aureon import keys
from aureon.strategies.reply_records import array_record_names, config_record, first_metrics, metric_items
from aureon.strategies.round_recorder import in_reply_order, reply_order
from tests.strategies.replies import reply, weights


def _mixed() -> RecordDict:
    return RecordDict(
        {
            "m2": MetricRecord({"b": 2}),
            "arrays": ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
            "cfg": ConfigRecord({"x": "y"}),
            "m1": MetricRecord({"a": 1}),
            "extra": ArrayRecord({"v": Array(np.ones(1, dtype=np.float32))}),
        }
    )


def test_direct_reads_match_flowers_record_views() -> None:
    content = _mixed()
    assert metric_items(content) == list(content.metric_records.items())
    assert first_metrics(content) is next(iter(content.metric_records.values()))
    assert array_record_names(content) == list(content.array_records.keys())
    assert config_record(content, "cfg") is content.config_records["cfg"]
    assert config_record(content, "m1") is None  # a record of another kind under that name
    assert config_record(content, "absent") is None
    empty = RecordDict({"arrays": ArrayRecord()})
    assert metric_items(empty) == [] and first_metrics(empty) is None


def _error_reply(node_id: int) -> Message:
    instruction = Message(RecordDict(), dst_node_id=node_id, message_type=MessageType.TRAIN)
    return Message(Error(code=1, reason="boom"), reply_to=instruction)


@pytest.mark.usefixtures("server_identity")
def test_replies_are_summed_in_the_same_order_as_sorting_by_reply_order() -> None:
    replies = [
        reply(5, weights(1.0), {keys.NUM_EXAMPLES: 10}),
        reply(2, weights(1.0), {keys.NUM_EXAMPLES: 10}),  # same content as node 5: ties go by node
        reply(9, weights(1.0), {keys.NUM_EXAMPLES: 30}),  # same arrays, other weight: ties go by all content
        reply(4, weights(2.0), {keys.NUM_EXAMPLES: 10}),
        reply(8, weights(-1.0), {keys.NUM_EXAMPLES: 7}),
        _error_reply(3),
        _error_reply(1),
    ]
    expected = [m.metadata.src_node_id for m in sorted(replies, key=reply_order)]
    for seed in range(5):
        shuffled = replies[:]
        random.Random(seed).shuffle(shuffled)
        assert [m.metadata.src_node_id for m in in_reply_order(shuffled)] == expected
    assert expected[-2:] == [1, 3]  # error replies last, by node
