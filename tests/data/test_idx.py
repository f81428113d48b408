"""MNIST's IDX format: real files written and read back, and clear errors on bad ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aureon.config import MnistConfig
from aureon.data.datasets import load_mnist_idx
from aureon.data.idx import read_idx, write_idx
from aureon.exceptions import DataError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_round_trip_plain_and_gzip(tmp_path: Path, name: str) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, images)
    np.testing.assert_array_equal(read_idx(tmp_path / name), images)


def test_idx_header_is_the_standard_one(tmp_path: Path) -> None:
    write_idx(tmp_path / "labels", np.array([7, 2, 1], dtype=np.uint8))
    raw = (tmp_path / "labels").read_bytes()
    assert raw[:8] == bytes([0, 0, 0x08, 1, 0, 0, 0, 3])
    assert raw[8:] == bytes([7, 2, 1])


def test_not_an_idx_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "x")


def test_truncated_idx_file_is_refused(tmp_path: Path) -> None:
    write_idx(tmp_path / "x", np.zeros((10, 28, 28), dtype=np.uint8))
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-5])
    with pytest.raises(DataError, match="header promises shape"):
        read_idx(tmp_path / "x")


def test_mnist_loader_reads_mixed_gzip_and_plain(tiny_mnist_dir: Path) -> None:
    data = load_mnist_idx(MnistConfig(path=str(tiny_mnist_dir)), seed=0)
    assert data.x_train.shape == (300, 1, 28, 28) and data.x_test.shape == (100, 1, 28, 28)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert set(np.unique(data.y_train)) == set(range(10))
    assert abs(float(data.x_train.mean())) < 1e-3  # standardised on the training split


def test_mnist_loader_names_the_missing_file(tiny_mnist_dir: Path) -> None:
    (tiny_mnist_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="holds no t10k-labels-idx1-ubyte"):
        load_mnist_idx(MnistConfig(path=str(tiny_mnist_dir)), seed=0)
