"""Bytes a Message occupies on the wire, as Flower serializes it."""

from __future__ import annotations

from flwr.app import Message
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects


def message_wire_bytes(message: Message) -> int:
    """Sum of the serialized objects Flower pushes for this message.

    Flower 1.42 sends a message as a tree of content-addressed objects (the
    message, its RecordDict, each record, each array chunk); this is the total
    of their serialized sizes, i.e. the payload that crosses the network.
    """
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(message).values())
