"""Valid files of every format AUREON reads, built once per session, for the tests to damage."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aureon.data.idx import write_idx
from aureon.model_compression.quantization import quantize_dynamic_int8, save_quantized
from aureon.model_compression.sparse_io import save_sparse
from aureon.tracking.checkpoint import Checkpoint, save_checkpoint
from aureon.tracking.records import ClientRound, RoundRecord


def small_model(hidden: int = 6) -> nn.Module:
    """A two-layer MLP small enough that its files are a few kilobytes."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def _bytes_of(write: Callable[[Path], object], name: str) -> bytes:
    """What ``write(path)`` puts in a file, via a scratch folder."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        write(path)
        return path.read_bytes()


@cache
def idx_images_bytes(gz: bool = False) -> bytes:
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    return _bytes_of(lambda p: write_idx(p, images), "images.gz" if gz else "images")


@cache
def checkpoint_bytes() -> bytes:
    record = RoundRecord(
        round=1, test_accuracy=0.5, test_loss=1.0, seconds=1.0,
        clients=[ClientRound(partition_id=0, node_id=1, num_examples=4, train_loss=0.1,
                             epsilon=None, bytes_up=1, bytes_down=1)],
    )
    state = {k: v.numpy() for k, v in small_model().state_dict().items()}
    checkpoint = Checkpoint(
        round=1, run_key="k", arrays=state, strategy_state={"1.m_t": {"w": np.ones(2)}},
        rounds=[record.to_json()], initial={"test_accuracy": 0.1, "test_loss": 2.0}, identity={"seed": 0},
    )
    return _bytes_of(lambda p: save_checkpoint(p.parent, checkpoint), "checkpoint.npz")


@cache
def model_pt_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(small_model().state_dict(), buffer)
    return buffer.getvalue()


@cache
def int8_bytes() -> bytes:
    return _bytes_of(lambda p: save_quantized(quantize_dynamic_int8(small_model()), p), "model.bin")


@cache
def sparse_bytes() -> bytes:
    state = small_model().state_dict()
    state["1.weight"][:, ::2] = 0.0
    state["1.weight"][::2] = 0.0
    return _bytes_of(lambda p: save_sparse(state, p), "model.prune.pt")
