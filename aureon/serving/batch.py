"""Batch prediction of a large file in flat memory: chunks in, one forward pass per chunk, chunks out.

Inputs: a ``.npy`` (memory-mapped), a ``.csv`` (read in chunks; one row per
image, C*H*W numbers, an optional header line), or a folder holding one IDX
images file (``*-images-idx3-ubyte[.gz]``: memory-mapped, or decompressed as a
stream). uint8 inputs (IDX, uint8 .npy) are raw pixels, standardised like
the server's uint8 rows. Outputs: ``.npy`` (predicted classes, int64, or with
``probabilities`` the (N, classes) float32 matrix) written through
``open_memmap``, or ``.csv`` (prediction and probabilities per row) appended chunk by chunk.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from aureon.exceptions import DataError
from aureon.serving.inputs import BadInput, InputSpec, softmax


@dataclass
class Source:
    """``rows`` values per image, ``count`` images, yielded in chunks as (n, row_size) arrays."""

    path: Path
    count: int
    dtype: str  # "float32" | "uint8"
    chunks: Callable[[int], Iterator[np.ndarray]]


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of the data) of a .npy file, read from its header alone."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as handle:
            major, _ = npy.read_magic(handle)
            read = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
            shape, fortran, dtype = read(handle)
            offset = handle.tell()
    except (OSError, ValueError) as err:
        raise DataError(f"input={str(path)!r}: not a readable .npy file ({err})") from err
    if fortran and len(shape) > 1:
        raise DataError(f"input={str(path)!r}: Fortran-ordered arrays are not supported; save it C-ordered")
    return tuple(shape), np.dtype(dtype), offset


def _npy(path: Path, row_size: int) -> Source:
    """A .npy read chunk by chunk from the file (not mapped: a map would count its whole size)."""
    shape, dtype, offset = _npy_header(path)
    if len(shape) < 1 or math.prod(shape[1:]) != row_size:
        raise DataError(f"input={str(path)!r}: shape {shape} does not hold rows of {row_size} values")
    if dtype == np.uint8:
        kind = "uint8"
    elif dtype.kind == "f" and not dtype.hasobject:
        kind = "float32"
    else:
        raise DataError(f"input={str(path)!r}: dtype {dtype}; expected float32 or uint8")
    count = shape[0]

    def chunks(size: int) -> Iterator[np.ndarray]:
        with open(path, "rb") as handle:
            handle.seek(offset)
            for start in range(0, count, size):
                n = min(size, count - start)
                values = np.fromfile(handle, dtype=dtype, count=n * row_size)
                if len(values) != n * row_size:
                    raise DataError(f"input={str(path)!r}: truncated: the header promises {count} rows")
                yield values.reshape(n, row_size)

    return Source(path, count, kind, chunks)


def _csv(path: Path, row_size: int) -> Source:
    import pandas as pd

    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
        count = sum(1 for _ in handle) + 1 if first else 0
    header = 0 if first and not _is_number(first.split(",")[0]) else None
    if header is not None:
        count -= 1

    def chunks(size: int) -> Iterator[np.ndarray]:
        reader = pd.read_csv(path, header=header, chunksize=size, dtype=np.float32)
        for index, frame in enumerate(reader):
            values = frame.to_numpy(dtype=np.float32)
            if values.shape[1] != row_size:
                raise DataError(
                    f"input={str(path)!r}: rows from {index * size + 1} hold {values.shape[1]} values, "
                    f"expected {row_size}"
                )
            yield values

    return Source(path, count, "float32", chunks)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _idx(folder: Path, row_size: int) -> Source:
    found = sorted(p for p in folder.iterdir() if p.name.split(".")[0].endswith("images-idx3-ubyte"))
    if len(found) != 1:
        raise DataError(
            f"input={str(folder)!r}: expected exactly one *-images-idx3-ubyte[.gz] file in the folder, "
            f"found {[p.name for p in found]}"
        )
    path = found[0]

    def opener() -> IO[bytes]:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]

    with opener() as handle:
        head = handle.read(16)
    if len(head) < 16 or head[:4] != b"\x00\x00\x08\x03":
        raise DataError(f"{path}: not an IDX file of uint8 images (magic {head[:4].hex()}, expected 00000803)")
    n, height, width = (int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
    if height * width != row_size:
        raise DataError(f"{path}: images are {height}x{width}, the model takes rows of {row_size} values")

    def chunks(size: int) -> Iterator[np.ndarray]:
        if path.suffix != ".gz":
            mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=16, shape=(n, row_size))
            for start in range(0, n, size):
                yield np.array(mapped[start : start + size])
            return
        with opener() as stream:
            stream.read(16)
            for start in range(0, n, size):
                want = min(size, n - start) * row_size
                data = stream.read(want)
                if len(data) != want:
                    raise DataError(f"{path}: truncated: header promises {n} images")
                yield np.frombuffer(data, dtype=np.uint8).reshape(-1, row_size)

    return Source(path, n, "uint8", chunks)


def open_source(path: Path, row_size: int) -> Source:
    """The input a user named, by its kind (.npy, .csv, or a folder of IDX files)."""
    path = Path(path)
    if path.is_dir():
        return _idx(path, row_size)
    if not path.is_file():
        raise DataError(f"input={str(path)!r}: no such file or folder")
    if path.suffix == ".npy":
        return _npy(path, row_size)
    if path.suffix == ".csv":
        return _csv(path, row_size)
    raise DataError(f"input={str(path)!r}: expected a .npy or .csv file or a folder of IDX files")


class Sink:
    """Where predictions go, chunk by chunk."""

    def __init__(self, path: Path, *, count: int, num_classes: int, probabilities: bool) -> None:
        self.path = Path(path)
        self.probabilities = probabilities
        self.row = 0
        if self.path.suffix == ".npy":
            from numpy.lib.format import open_memmap

            shape = (count, num_classes) if probabilities else (count,)
            dtype = np.float32 if probabilities else np.int64
            self.array: np.memmap | None = open_memmap(self.path, mode="w+", dtype=dtype, shape=shape)
            self.handle: IO[str] | None = None
        elif self.path.suffix == ".csv":
            self.array = None
            self.handle = open(self.path, "w", encoding="utf-8")
            self.handle.write(",".join(["prediction", *(f"p{i}" for i in range(num_classes))]) + "\n")
        else:
            raise DataError(f"output={str(path)!r}: expected a .npy or .csv file name")

    def write(self, logits: np.ndarray) -> None:
        predictions = logits.argmax(axis=1)
        if self.array is not None:
            end = self.row + len(logits)
            self.array[self.row : end] = softmax(logits) if self.probabilities else predictions
            self.row = end
            return
        if self.handle is None:
            raise ValueError(f"{self.path}: written after close")
        probabilities = softmax(logits)
        lines = [
            f"{int(c)}," + ",".join(f"{p:.6g}" for p in row) for c, row in zip(predictions, probabilities, strict=True)
        ]
        self.handle.write("\n".join(lines) + "\n")
        self.row += len(logits)

    def close(self) -> None:
        if self.array is not None:
            self.array.flush()
            del self.array
            self.array = None
        if self.handle is not None:
            self.handle.close()


def predict_file(
    *,
    source: Source,
    sink: Sink,
    spec: InputSpec,
    logits: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
    progress: bool = True,
) -> int:
    """Predict every row of ``source`` into ``sink``; returns the rows written."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress("[bold]predicting", *columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("predict", total=source.count)
        try:
            for index, chunk in enumerate(source.chunks(batch_size)):
                try:
                    images = spec.to_images(chunk, source.dtype)
                except BadInput as err:
                    raise DataError(
                        f"input={str(source.path)!r}, rows from {index * batch_size}: {err.message}"
                    ) from None
                sink.write(logits(images))
                bar.advance(task, len(chunk))
        finally:
            sink.close()
    return sink.row
