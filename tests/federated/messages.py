"""Real Flower messages and contexts for calling the client handlers directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

from aureon import keys
from aureon.config import AureonConfig
from aureon.launch.run_config import compose_config
from aureon.models import build_model

# Pixels, the SmallCNN and one local epoch, pinned: the default run's recipe
# (conf/config.yaml) may change without moving these tests.
PINNED = ["features=none", "model=cnn", "train.local_epochs=1", "train.lr=0.05", "train.momentum=0.9",
          "train.lr_decay=1.0"]


def digits_config(*overrides: str) -> AureonConfig:
    return compose_config(
        ["dataset=digits", *PINNED, "num_clients=3", "num_rounds=3", "train.batch_size=32", *overrides]
    )


def client_context(
    partition_id: int, num_partitions: int, state_dir: Path | None, **node_config: object
) -> Context:
    config: dict[str, object] = {
        keys.NODE_PARTITION_ID: partition_id,
        keys.NODE_NUM_PARTITIONS: num_partitions,
        **node_config,
    }
    if state_dir is not None:
        config[keys.NODE_STATE_DIR] = str(state_dir)
    return Context(
        run_id=1, node_id=100 + partition_id, node_config=config, state=RecordDict(), run_config={}
    )


def train_message(
    arrays: ArrayRecord, server_round: int, *, run_key: str = "run-a", **config: float | str
) -> Message:
    record = ConfigRecord({keys.SERVER_ROUND: server_round, keys.RUN_KEY: run_key, **config})
    content = RecordDict({keys.ARRAYS: arrays, keys.CONFIG: record})
    return Message(content=content, dst_node_id=101, message_type=MessageType.TRAIN)


def initial_arrays(config: AureonConfig) -> ArrayRecord:
    model = build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=config.seed)
    return ArrayRecord(model.state_dict())


def flat(arrays: ArrayRecord) -> np.ndarray:
    return np.concatenate([a.numpy().ravel() for a in arrays.values()])
