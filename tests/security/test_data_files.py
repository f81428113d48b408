"""IDX files: each way a dataset file can be wrong gives a DataError naming the file and the fault."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from aureon.config import MnistConfig
from aureon.data.datasets import load_mnist_idx
from aureon.data.idx import read_idx, read_idx_images, read_idx_labels, write_idx
from aureon.exceptions import DataError
from aureon.features.cache import FeatureStore


def _one_line_naming(error: pytest.ExceptionInfo[DataError], path: Path) -> None:
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_truncated_gzip_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((10, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="not a valid gzip file") as error:
        read_idx(path)
    _one_line_naming(error, path)


def test_gz_file_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write_idx(plain, np.zeros((2, 3, 3), dtype=np.uint8))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(plain.read_bytes())
    with pytest.raises(DataError, match="not a valid gzip file") as error:
        read_idx(path)
    _one_line_naming(error, path)


def test_gzip_content_without_gz_name_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))
    with pytest.raises(DataError, match="not an IDX file.*name it .gz"):
        read_idx(path)


def test_wrong_magic_number_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(DataError, match="not an IDX file: its magic number 01000801") as error:
        read_idx(path)
    _one_line_naming(error, path)


def test_unknown_data_type_and_short_header_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x07")
    with pytest.raises(DataError, match="unknown IDX data type 0x07"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x01")
    with pytest.raises(DataError, match="truncated IDX header: 3 dimensions need 16 bytes"):
        read_idx(path)


def test_header_promising_2_pow_64_bytes_does_not_wrap_around(tmp_path: Path) -> None:
    """Four dims of 2**16: their product is 2**64, which is 0 in int64 and matched an empty file."""
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + (65536).to_bytes(4, "big") * 4)
    with pytest.raises(DataError, match=rf"\({2**64} bytes of data\), file holds 0 bytes") as error:
        read_idx(path)
    _one_line_naming(error, path)


def test_one_dimensional_images_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.arange(10, dtype=np.uint8))
    with pytest.raises(DataError, match=r"images must be 3-D \(N x H x W\), file holds 1-D") as error:
        read_idx_images(path)
    _one_line_naming(error, path)


def test_label_200_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte"
    write_idx(path, np.array([1, 2, 200, 3], dtype=np.uint8))
    with pytest.raises(DataError, match=r"labels must be in \[0, 10\); label 200 at index 2") as error:
        read_idx_labels(path, 10)
    _one_line_naming(error, path)


def test_mnist_loader_refuses_label_200_naming_the_file(tiny_mnist_dir: Path) -> None:
    path = tiny_mnist_dir / "t10k-labels-idx1-ubyte"
    labels = read_idx(path).copy()
    labels[5] = 200
    write_idx(path, labels)
    with pytest.raises(DataError, match="label 200") as error:
        load_mnist_idx(MnistConfig(path=str(tiny_mnist_dir)), seed=0)
    _one_line_naming(error, path)


def test_mnist_loader_refuses_label_count_that_differs_from_image_count(tiny_mnist_dir: Path) -> None:
    path = tiny_mnist_dir / "t10k-labels-idx1-ubyte"
    write_idx(path, read_idx(path)[:-1])
    with pytest.raises(DataError, match="holds 99 labels but t10k-images-idx3-ubyte holds 100 images") as error:
        load_mnist_idx(MnistConfig(path=str(tiny_mnist_dir)), seed=0)
    _one_line_naming(error, path)


def test_corrupted_feature_cache_file_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    store.write("k", shape=array.shape, dtype=array.dtype, chunks=[array])
    cache_file = store.data_path("k")
    cache_file.write_bytes(cache_file.read_bytes()[:-4])  # truncated, as after a crash
    assert store.open("k") is None
    store.write("k", shape=array.shape, dtype=array.dtype, chunks=[array])
    np.testing.assert_array_equal(np.load(cache_file), array)  # the bad file was replaced
    np.testing.assert_array_equal(np.asarray(store.open("k")), array)
