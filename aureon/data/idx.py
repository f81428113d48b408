"""Reader for the IDX format in which MNIST (and Fashion-MNIST) are distributed."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from aureon.exceptions import DataError, describe

_GZIP_MAGIC = b"\x1f\x8b"
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in .gz; unreadable files raise DataError."""
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a valid gzip file ({describe(err)})") from err
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({describe(err)})") from err


def _header(path: Path, raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, offset of the data) from an IDX header, every field checked against the file."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        hint = " (it is gzip-compressed: name it .gz)" if raw[:2] == _GZIP_MAGIC else ""
        raise DataError(
            f"{path} is not an IDX file: its magic number {raw[:4].hex() or '(empty)'} "
            f"does not start with two zero bytes{hint}"
        )
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code not in _DTYPES:
        raise DataError(f"{path}: unknown IDX data type 0x{dtype_code:02x}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DataError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_end} bytes, file holds {len(raw)}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return _DTYPES[dtype_code], shape, header_end


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into an array of its stated shape.

    Sizes are multiplied as Python integers: a header promising 2**64 bytes
    would wrap around in int64 arithmetic and slip past the size check.
    """
    path = Path(path)
    raw = _read_bytes(path)
    dtype, shape, header_end = _header(path, raw)
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise DataError(
            f"{path}: header promises shape {shape} ({expected} bytes of data), "
            f"file holds {len(raw) - header_end} bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)


def read_idx_images(path: Path) -> np.ndarray:
    """An images file: unsigned bytes, N x H x W with every size >= 1."""
    images = read_idx(path)
    if images.ndim != 3:
        raise DataError(f"{path}: images must be 3-D (N x H x W), file holds {images.ndim}-D shape {images.shape}")
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images must be unsigned bytes (IDX type 0x08), got {images.dtype}")
    if 0 in images.shape:
        raise DataError(f"{path}: images must have every size >= 1, got shape {images.shape}")
    return images


def read_idx_labels(path: Path, num_classes: int) -> np.ndarray:
    """A labels file: 1-D integers, each a class in [0, num_classes)."""
    labels = read_idx(path)
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be 1-D, file holds {labels.ndim}-D shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{path}: labels must be integers, got {labels.dtype}")
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        index = int(np.argmax(outside))
        raise DataError(
            f"{path}: labels must be in [0, {num_classes}); label {int(labels[index])} "
            f"at index {index} ({int(outside.sum())} out of range in all)"
        )
    return labels


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip-compressed when the name ends in .gz)."""
    codes = {np.dtype(v).newbyteorder(">") if np.dtype(v).itemsize > 1 else np.dtype(v): k for k, v in _DTYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in codes:
        raise DataError(f"cannot write dtype {array.dtype} as IDX")
    header = bytes([0, 0, codes[dtype], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
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
