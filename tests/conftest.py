"""Shared fixtures: small real data written the way users have it on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from aureon.data.idx import write_idx

# Tiny models train faster on one thread, and CI shares two cores with Ray workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")


@pytest.fixture()
def tiny_mnist_dir(tmp_path: Path) -> Path:
    """A folder of the four MNIST IDX files (gzipped), 300 train / 100 test images.

    The images are real scikit-learn digits upscaled to 28x28, so models can learn them.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((4, 4)))[:, 2:30, 2:30]  # 32x32 -> 28x28
    images = (images / 16.0 * 255).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", images[:300])
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:300])
    write_idx(folder / "t10k-images-idx3-ubyte", images[300:400])
    write_idx(folder / "t10k-labels-idx1-ubyte", labels[300:400])
    return folder


@pytest.fixture()
def server_identity():
    """Act as a ServerApp task, as Flower does before a ServerApp builds messages."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
    yield
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved
