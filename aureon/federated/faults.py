"""Fault injection: make chosen clients send Byzantine updates, for robustness experiments.

Driven by config (``faults.byzantine_partitions=[0] faults.mode=sign_flip``),
so the same ClientApp runs honest and faulty clients; the corruption is applied
to the weights of the train reply (after local training and the upload codec's
encoding, when one is on), before secure aggregation masks them.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, RecordDict

from aureon import keys
from aureon.config import AureonConfig, FaultsConfig
from aureon.federated.client import handle_train


def corrupt_weights(
    trained: dict[str, np.ndarray], received: dict[str, np.ndarray], *, faults: FaultsConfig
) -> dict[str, np.ndarray]:
    """The weights a Byzantine client sends instead of ``trained``.

    ``sign_flip``: received - scale * (trained - received);
    ``scale``: received + scale * (trained - received).
    """
    factor = -faults.scale if faults.mode == "sign_flip" else faults.scale
    corrupted = {}
    for name, value in trained.items():
        base = received[name]
        if not np.issubdtype(value.dtype, np.floating):
            corrupted[name] = value
            continue
        corrupted[name] = (base + factor * (value - base)).astype(value.dtype)
    return corrupted


def train_with_faults(msg: Message, context: Context, config: AureonConfig) -> Message:
    """``handle_train``, with the update corrupted when this partition is a Byzantine one."""
    reply = handle_train(msg, context, config)
    partition_id = int(context.node_config[keys.NODE_PARTITION_ID])
    if partition_id not in config.faults.byzantine_partitions or reply.has_error():
        return reply
    trained = {name: a.numpy() for name, a in cast(ArrayRecord, reply.content[keys.ARRAYS]).items()}
    received = {name: a.numpy() for name, a in cast(ArrayRecord, msg.content[keys.ARRAYS]).items()}
    corrupted = corrupt_weights(trained, received, faults=config.faults)
    content = RecordDict({k: v for k, v in reply.content.items() if k != keys.ARRAYS})
    content[keys.ARRAYS] = ArrayRecord({n: Array(np.ascontiguousarray(v)) for n, v in corrupted.items()})
    return Message(content=content, reply_to=msg)
