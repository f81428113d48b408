"""A folder of named arrays on disk that every process memory-maps, each checked before use.

An entry is one ``.npy`` file and a manifest beside it (shape, dtype, size and a
CRC-32 of every 16 MiB block of the file, checked on all cores). Readers map the
file read-only, so the operating system shares its pages between all the
processes of a run (Ray workers, the server) and a client that indexes its rows
copies only those. A file that is missing, truncated or altered does not match
its manifest: it is a miss, computed again and replaced, never trusted. Writers
stream the file through a temporary one (O_EXCL, fsync, rename: ``aureon.files``)
and the manifest after it; a lock file serialises the processes that find the
same entry missing, and a reader only ever maps a file it has checked byte for
byte.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import mmap
import os
import re
import threading
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy

from aureon.exceptions import describe
from aureon.files import atomic_write_chunks, atomic_write_text

LOG = logging.getLogger(__name__)

FORMAT = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
BLOCK = 1 << 24  # bytes per checksummed block: blocks are checked in parallel


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/aureon/features``, or ``~/.cache/aureon/features``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aureon" / "features"


class DamagedEntry(Exception):
    """An entry's file does not match its manifest (internal: such an entry is a miss)."""


@dataclass(frozen=True)
class Manifest:
    """What an entry's ``.npy`` file must be: its array's shape and dtype, its size, its blocks' CRC-32.

    CRC-32 finds damage (a truncation, a flipped bit, a stray write), which is what
    a cache in the user's own folder has to fear, at several GB/s per core.
    """

    shape: tuple[int, ...]
    dtype: str
    size: int
    crc32: tuple[int, ...]  # one per BLOCK bytes of the file, the last block shorter

    def to_json(self) -> str:
        fields = {"format": FORMAT, "shape": list(self.shape), "dtype": self.dtype, "size": self.size}
        return json.dumps({**fields, "block": BLOCK, "crc32": list(self.crc32)})

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("block") != BLOCK:
            raise ValueError(f"not a format-{FORMAT} manifest of {BLOCK}-byte blocks")
        shape, dtype, size, crc32 = data["shape"], data["dtype"], data["size"], data["crc32"]
        if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise ValueError(f"shape must be a list of sizes, got {shape!r}")
        if not (isinstance(dtype, str) and isinstance(size, int) and isinstance(crc32, list)):
            raise ValueError("dtype, size and crc32 must be a string, an integer and a list")
        if len(crc32) != -(-size // BLOCK) or not all(isinstance(c, int) for c in crc32):
            raise ValueError(f"a {size}-byte file needs {-(-size // BLOCK)} block checksums, got {len(crc32)}")
        return cls(shape=tuple(shape), dtype=dtype, size=size, crc32=tuple(crc32))


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": npy.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    npy.write_array_header_1_0(buffer, header)  # type: ignore[no-untyped-call]
    return buffer.getvalue()


def _read_header(handle: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a .npy header."""
    version = npy.read_magic(handle)  # type: ignore[no-untyped-call]
    if version == (1, 0):
        return npy.read_array_header_1_0(handle)  # type: ignore[no-untyped-call,no-any-return]
    if version == (2, 0):
        return npy.read_array_header_2_0(handle)  # type: ignore[no-untyped-call,no-any-return]
    raise ValueError(f"unsupported .npy version {version}")


class _BlockChecksums:
    """CRC-32 of each BLOCK bytes of a stream fed in pieces of any size."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.crc, self.filled = 0, 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            take = min(len(view), BLOCK - self.filled)
            self.crc = zlib.crc32(view[:take], self.crc)
            self.filled += take
            view = view[take:]
            if self.filled == BLOCK:
                self.done.append(self.crc)
                self.crc, self.filled = 0, 0

    def result(self) -> tuple[int, ...]:
        return tuple(self.done + ([self.crc] if self.filled else []))


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _file_crc32(fd: int, size: int) -> tuple[int, ...]:
    """The block checksums of an open file, read with ``preadv`` on every core (not mapped:
    checking leaves nothing resident).

    Each thread reads into one anonymous mapping of its own, unmapped when the
    check ends: a fresh 16 MiB ``bytes`` per block would go through malloc, whose
    arenas keep such memory counted in the process long after it is freed.
    """
    local = threading.local()
    buffers: list[mmap.mmap] = []

    def block(offset: int) -> int:
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = mmap.mmap(-1, BLOCK)
            buffers.append(buffer)
        wanted = min(BLOCK, size - offset)
        with memoryview(buffer) as whole, whole[:wanted] as view:
            got = os.preadv(fd, [view], offset)
            if got != wanted:
                raise DamagedEntry(f"read {got} of {wanted} bytes at offset {offset}")
            return zlib.crc32(view)

    offsets = range(0, size, BLOCK)
    try:
        with ThreadPoolExecutor(max_workers=min(_threads(), max(1, len(offsets)))) as pool:
            return tuple(pool.map(block, offsets))
    finally:
        for buffer in buffers:
            buffer.close()


def contiguous_run(rows: np.ndarray) -> slice | None:
    """``rows`` as a slice when they are consecutive and increasing (an IID partition); else None."""
    rows = np.asarray(rows)
    if rows.ndim != 1 or len(rows) == 0 or rows.dtype.kind not in "iu":
        return None
    start = int(rows[0])
    if start < 0 or not np.array_equal(rows, np.arange(start, start + len(rows), dtype=rows.dtype)):
        return None
    return slice(start, start + len(rows))


def release_pages(array: np.ndarray) -> None:
    """Give back the pages of a mapped cache entry that this process touched (no-op for other arrays).

    Read-only file pages: nothing is lost, they stay in the operating system's
    page cache (shared by every process) and a later read faults them in again.
    """
    mapping = getattr(array, "_mmap", None)  # np.memmap's mapping; None for an array in memory
    if mapping is not None and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def take_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]``: a view when ``rows`` are consecutive (nothing copied), else a private copy.

    A view of a mapped cache entry stays a read-only map: training gathers each
    batch from it (``aureon.training.loops``), so a client holds no copy of its
    partition. Copying scattered rows touches the file's pages all over the
    mapping; they are released afterwards (``release_pages``).
    """
    run = contiguous_run(rows)
    if run is not None:
        return array[run]
    taken = array[rows]
    release_pages(array)
    return taken


class FeatureStore:
    """Named arrays in one folder: ``<name>.npy`` (the array) and ``<name>.manifest.json``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def _path(self, name: str, suffix: str) -> Path:
        if not _NAME.fullmatch(name):
            raise ValueError(f"a cache entry name must match {_NAME.pattern}, got {name!r}")
        return self.directory / f"{name}{suffix}"

    def data_path(self, name: str) -> Path:
        return self._path(name, ".npy")

    def manifest_path(self, name: str) -> Path:
        return self._path(name, ".manifest.json")

    def _manifest(self, name: str) -> Manifest | None:
        try:
            return Manifest.from_json(self.manifest_path(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            path = self.manifest_path(name)
            LOG.warning("feature cache manifest %s is unreadable (%s); recomputing", path, describe(err))
            return None

    def present(self, name: str) -> bool:
        """Whether ``name`` is on disk at its recorded size (its bytes are checked by ``open``)."""
        manifest = self._manifest(name)
        try:
            return manifest is not None and self.data_path(name).stat().st_size == manifest.size
        except OSError:
            return False

    def open(self, name: str) -> np.ndarray | None:
        """The array ``name`` mapped read-only after checking it against its manifest; None on a miss.

        A missing entry is a miss; a damaged one (truncated, altered, unreadable)
        is logged and is a miss too, so the caller computes it again.
        """
        manifest = self._manifest(name)
        if manifest is None:
            return None
        try:
            return self._map(name, manifest, check_content=True)
        except (OSError, EOFError, ValueError, DamagedEntry) as err:
            LOG.warning("feature cache entry %s is damaged (%s); recomputing", self.data_path(name), describe(err))
            return None

    def _map(self, name: str, manifest: Manifest, *, check_content: bool) -> np.ndarray:
        path = self.data_path(name)
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != manifest.size:
                raise DamagedEntry(f"{path} holds {size} bytes, its manifest says {manifest.size}")
            shape, fortran_order, dtype = _read_header(handle)
            if tuple(shape) != manifest.shape or dtype.str != manifest.dtype or fortran_order:
                raise DamagedEntry(f"{path} holds a {dtype.str} array of shape {shape}, its manifest says otherwise")
            offset = handle.tell()
            if offset + int(np.prod(shape)) * dtype.itemsize != size:
                raise DamagedEntry(f"{path}: {size} bytes cannot hold a {dtype.str} array of shape {shape}")
            if check_content and _file_crc32(handle.fileno(), size) != manifest.crc32:
                raise DamagedEntry(f"{path}: its content differs from its manifest's checksums")
            if size == offset:  # an empty array: nothing to map
                empty = np.empty(shape, dtype=dtype)
                empty.flags.writeable = False
                return empty
            # the file just checked is the one mapped, even if a writer replaces the path meanwhile
            return np.memmap(handle, dtype=dtype, mode="r", shape=tuple(shape), offset=offset)

    def write(
        self, name: str, *, shape: tuple[int, ...], dtype: np.dtype | str, chunks: Iterable[np.ndarray]
    ) -> np.ndarray:
        """Store the array made of ``chunks`` (consecutive rows) as ``name``; returns it mapped.

        Memory stays at one chunk: the file is streamed, its checksums computed on the way.
        """
        if not shape:
            raise ValueError(f"cache entry {name}: an array of rows needs a shape of at least one axis, got ()")
        dtype = np.dtype(dtype)
        checksums, written = _BlockChecksums(), [0, 0]  # bytes, rows

        def pieces() -> Iterator[bytes | memoryview]:
            for piece in self._pieces(shape, dtype, chunks, written):
                checksums.update(piece)
                written[0] += len(piece)
                yield piece

        atomic_write_chunks(self.data_path(name), pieces())
        if written[1] != shape[0]:
            raise ValueError(f"cache entry {name}: chunks held {written[1]} rows, expected {shape[0]}")
        manifest = Manifest(shape=tuple(shape), dtype=dtype.str, size=written[0], crc32=checksums.result())
        atomic_write_text(self.manifest_path(name), manifest.to_json())
        return self._map(name, manifest, check_content=False)

    @staticmethod
    def _pieces(
        shape: tuple[int, ...], dtype: np.dtype, chunks: Iterable[np.ndarray], written: list[int]
    ) -> Iterator[bytes | memoryview]:
        yield _npy_header(tuple(shape), dtype)
        for chunk in chunks:
            if chunk.dtype != dtype or chunk.shape[1:] != tuple(shape[1:]):
                raise ValueError(f"a chunk of shape {chunk.shape} ({chunk.dtype}) does not fit {shape} ({dtype})")
            written[1] += len(chunk)
            if written[1] > shape[0]:
                raise ValueError(f"chunks hold more than the {shape[0]} rows expected")
            yield np.ascontiguousarray(chunk).reshape(-1).view(np.uint8).data

    @contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold ``name``'s lock: the processes that find the same entry missing compute it once."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self._path(name, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
