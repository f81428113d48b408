"""Reader for the IDX format in which MNIST (and Fashion-MNIST) are distributed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from aureon.exceptions import DataError

_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into an array of its stated shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file: its magic number is missing")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code not in _DTYPES:
        raise DataError(f"{path}: unknown IDX data type 0x{dtype_code:02x}")
    header_end = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header_end], dtype=">u4"))
    dtype = np.dtype(_DTYPES[dtype_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise DataError(
            f"{path}: header promises shape {shape} ({expected} bytes of data), "
            f"file holds {len(raw) - header_end} bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip-compressed when the name ends in .gz)."""
    codes = {np.dtype(v).newbyteorder(">") if np.dtype(v).itemsize > 1 else np.dtype(v): k
             for k, v in _DTYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in codes:
        raise DataError(f"cannot write dtype {array.dtype} as IDX")
    header = bytes([0, 0, codes[dtype], array.ndim]) + np.asarray(
        array.shape, dtype=">u4"
    ).tobytes()
    payload = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(payload)


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def find_idx_file(folder: Path, stem: str) -> Path:
    """Find ``stem`` or ``stem.gz`` in ``folder``, with a clear error if neither is there."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"dataset.path={str(folder)!r} holds no {stem} or {stem}.gz; expected a folder "
        "with MNIST's four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or not)"
    )
