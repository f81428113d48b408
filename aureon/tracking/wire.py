"""Bytes a Message occupies on the wire, as Flower serializes it."""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import Message
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, no_object_id_recompute


def message_wire_bytes(message: Message) -> int:
    """Sum of the serialized objects Flower pushes for this message.

    Flower 1.42 sends a message as a tree of content-addressed objects (the
    message, its RecordDict, each record, each array chunk); this is the total
    of their serialized sizes, i.e. the payload that crosses the network.
    """
    return messages_wire_bytes([message])[0]


def messages_wire_bytes(messages: Iterable[Message]) -> list[int]:
    """``message_wire_bytes`` of each message, every distinct object serialized once for all of them.

    The train messages of a round share their content (one global model sent
    to every node): counted one by one, each would serialize and hash the
    model again, at every level of its tree. An object's id is the hash of
    its serialized form, so one id has one size; ids are computed once per
    object for the whole call, as Flower does while it pushes a message.
    """
    sizes: dict[str, int] = {}
    counts = []
    with no_object_id_recompute():
        for message in messages:
            total = 0
            for object_id, obj in get_all_nested_objects(message).items():
                size = sizes.get(object_id)
                if size is None:
                    size = sizes[object_id] = len(obj.deflate())
                total += size
            counts.append(total)
    return counts
