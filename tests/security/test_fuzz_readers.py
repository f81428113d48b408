"""Fuzzing every file reader: damaged input loads or raises AUREON's error, on one line naming the file.

Each reader gets random bytes, truncations and bit flips (anywhere, and
concentrated in the header) of a valid file. Any exception other than the
project's own error type fails the test: that is a traceback a user would see.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aureon.data.idx import read_idx, read_idx_images, read_idx_labels
from aureon.exceptions import AureonError, DataError, ModelFileError
from aureon.model_compression.int8_io import load_int8_state
from aureon.model_compression.model_io import load_state_file
from aureon.model_compression.sparse_io import load_sparse
from aureon.tracking.checkpoint import CheckpointError, load_checkpoint
from tests.security import samples

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER_BYTES = 64


def _flip(data: bytes, bits: list[int]) -> bytes:
    out = bytearray(data)
    for bit in bits:
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def damaged(valid: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, a truncation, or 1-4 flipped bits (anywhere or in the first bytes)."""
    anywhere = st.integers(0, len(valid) * 8 - 1)
    header = st.integers(0, min(len(valid), HEADER_BYTES) * 8 - 1)
    return st.one_of(
        st.binary(max_size=256),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        st.lists(anywhere, min_size=1, max_size=4).map(lambda bits: _flip(valid, bits)),
        st.lists(header, min_size=1, max_size=4).map(lambda bits: _flip(valid, bits)),
    )


def loads_or_fails_cleanly(
    content: bytes, name: str, load: Callable[[Path], Any], error: type[AureonError]
) -> None:
    """Write ``content`` as ``name`` and load it: success, or ``error`` on one line naming the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            load(path)
        except error as err:
            message = str(err)
            assert "\n" not in message, message
            assert str(path) in message, message


@FUZZ
@given(damaged(samples.idx_images_bytes()))
def test_idx_reader_on_damaged_plain_files(content: bytes) -> None:
    loads_or_fails_cleanly(content, "images-idx3-ubyte", read_idx, DataError)
    loads_or_fails_cleanly(content, "images-idx3-ubyte", read_idx_images, DataError)
    loads_or_fails_cleanly(content, "labels-idx1-ubyte", lambda p: read_idx_labels(p, 10), DataError)


@FUZZ
@given(damaged(samples.idx_images_bytes(gz=True)))
def test_idx_reader_on_damaged_gzip_files(content: bytes) -> None:
    loads_or_fails_cleanly(content, "images-idx3-ubyte.gz", read_idx_images, DataError)


@FUZZ
@given(damaged(samples.checkpoint_bytes()))
def test_checkpoint_loader_on_damaged_files(content: bytes) -> None:
    loads_or_fails_cleanly(content, "checkpoint.npz", lambda p: load_checkpoint(p.parent), CheckpointError)


@FUZZ
@given(damaged(samples.model_pt_bytes()))
def test_model_pt_loader_on_damaged_files(content: bytes) -> None:
    loads_or_fails_cleanly(content, "model.pt", load_state_file, ModelFileError)


@FUZZ
@given(damaged(samples.int8_bytes()))
def test_int8_loader_on_damaged_files(content: bytes) -> None:
    loads_or_fails_cleanly(content, "model.quantize.bin", load_int8_state, ModelFileError)


@FUZZ
@given(damaged(samples.sparse_bytes()))
def test_sparse_loader_on_damaged_files(content: bytes) -> None:
    loads_or_fails_cleanly(content, "model.prune.pt", load_sparse, ModelFileError)
