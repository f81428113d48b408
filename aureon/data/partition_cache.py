"""Partition indices computed once per machine and stored on disk; each client reads its slice.

Computing a split needs flwr-datasets, and behind it Hugging Face ``datasets``,
pyarrow and pandas: seconds of imports and about a hundred MB in every process
that does it. With this cache the first process that needs a split (the
simulation's driver, before the clients start) computes it and writes it; every
client afterwards reads only its own indices and never imports those packages.

An entry is one file named by a key over everything that decides the split:
the labels' content, the partition config, the number of partitions, the seed,
the flwr-datasets version and the partitioning code. Its header (checksummed)
records where each partition starts and the SHA-256 of each partition's
indices; a reader checks the header and its own slice, so a damaged file is a
miss (computed again and replaced), never trusted. The file is written
atomically (``aureon.files``) and a lock file serialises the processes that
find the same entry missing, so it is computed once.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from aureon.config import PartitionConfig
from aureon.exceptions import ConfigError
from aureon.files import atomic_write_chunks

LOG = logging.getLogger(__name__)

FORMAT = 1
_MAGIC = b"AUREONPI"
_PREFIX = struct.Struct("<8sI32s")  # magic, header length, SHA-256 of the header
_INDEX = np.dtype("<i8")


def default_partition_dir() -> Path:
    """``$XDG_CACHE_HOME/aureon/partitions``, or ``~/.cache/aureon/partitions``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aureon" / "partitions"


class DamagedPartition(Exception):
    """An entry's file is not what its header says (internal: such an entry is a miss)."""


@dataclass(frozen=True)
class _Header:
    key: str
    bounds: tuple[int, ...]  # partition p is indices[bounds[p]:bounds[p + 1]]
    sha256: tuple[str, ...]  # of each partition's little-endian int64 indices

    def to_bytes(self) -> bytes:
        fields = {"format": FORMAT, "key": self.key, "bounds": list(self.bounds), "sha256": list(self.sha256)}
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> _Header:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DamagedPartition(f"not a format-{FORMAT} partition header")
        key, bounds, sha = data.get("key"), data.get("bounds"), data.get("sha256")
        if not (isinstance(key, str) and isinstance(bounds, list) and isinstance(sha, list)):
            raise DamagedPartition("key, bounds and sha256 must be a string and two lists")
        if not all(isinstance(b, int) for b in bounds) or len(bounds) != len(sha) + 1 or not bounds:
            raise DamagedPartition(f"{len(sha)} partitions need {len(sha) + 1} integer bounds, got {bounds!r}")
        if bounds[0] != 0 or any(a > b for a, b in zip(bounds, bounds[1:], strict=False)):
            raise DamagedPartition(f"bounds must start at 0 and never decrease, got {bounds!r}")
        return cls(key=key, bounds=tuple(bounds), sha256=tuple(str(s) for s in sha))


def _digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=_INDEX).data).hexdigest()


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def partition_key(labels: np.ndarray, config: PartitionConfig, num_partitions: int, seed: int) -> str:
    """Names one split: labels' content, config, partition count, seed, partitioner version and code."""
    from aureon.data import partition

    labels = np.ascontiguousarray(labels)  # hashed as stored: float targets must not collide when truncated
    sha = hashlib.sha256()
    for part in (
        FORMAT,
        labels.dtype.str,
        labels.shape,
        hashlib.sha256(labels.data).hexdigest(),
        f"{type(config).__module__}.{type(config).__qualname__}",
        sorted(dataclasses.asdict(config).items()),
        num_partitions,
        seed,
        _installed("flwr-datasets"),
        _installed("datasets"),
        hashlib.sha256(Path(str(partition.__file__)).read_bytes()).hexdigest(),
    ):
        sha.update(repr(part).encode() + b"\0")
    return sha.hexdigest()[:32]


class PartitionCache:
    """Splits of training sets among clients, one file per split, in one folder."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.partition"

    def client_indices(
        self, labels: np.ndarray, config: PartitionConfig, partition_id: int, num_partitions: int, seed: int
    ) -> np.ndarray:
        """Partition ``partition_id``'s indices into ``labels``: read from disk, computed on a miss."""
        if not 0 <= partition_id < num_partitions:
            raise ConfigError(f"partition-id must be in [0, {num_partitions}), got {partition_id}")
        key = partition_key(labels, config, num_partitions, seed)
        found = self._read(key, partition_id, num_partitions)
        if found is not None:
            return found
        with self._locked(key):  # another process may be computing the same split
            found = self._read(key, partition_id, num_partitions)
            if found is None:
                parts = self._compute(key, labels, config, num_partitions, seed)
                found = parts[partition_id]
        return found

    def ensure(self, labels: np.ndarray, config: PartitionConfig, num_partitions: int, seed: int) -> Path:
        """The split on disk (computed now if missing or damaged); its file."""
        key = partition_key(labels, config, num_partitions, seed)
        if self._read(key, 0, num_partitions) is None:
            with self._locked(key):
                if self._read(key, 0, num_partitions) is None:
                    self._compute(key, labels, config, num_partitions, seed)
        return self.path(key)

    def _compute(
        self, key: str, labels: np.ndarray, config: PartitionConfig, num_partitions: int, seed: int
    ) -> list[np.ndarray]:
        from aureon.data.partition import partition_indices

        parts = [np.ascontiguousarray(p, dtype=_INDEX) for p in partition_indices(labels, config, num_partitions, seed)]
        bounds = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(int).tolist()
        header = _Header(key=key, bounds=tuple(bounds), sha256=tuple(_digest(p) for p in parts)).to_bytes()
        prefix = _PREFIX.pack(_MAGIC, len(header), hashlib.sha256(header).digest())
        atomic_write_chunks(self.path(key), [prefix, header, *(p.data for p in parts)])
        return parts

    def _read(self, key: str, partition_id: int, num_partitions: int) -> np.ndarray | None:
        """Partition ``partition_id`` of entry ``key`` after checking it; None on a miss."""
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                return self._slice(handle.fileno(), key, partition_id, num_partitions)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, DamagedPartition) as err:
            LOG.warning("partition cache entry %s is damaged (%s); recomputing", path, err)
            return None

    @staticmethod
    def _slice(fd: int, key: str, partition_id: int, num_partitions: int) -> np.ndarray:
        prefix = os.pread(fd, _PREFIX.size, 0)
        if len(prefix) != _PREFIX.size:
            raise DamagedPartition("shorter than its prefix")
        magic, header_size, header_sha = _PREFIX.unpack(prefix)
        if magic != _MAGIC:
            raise DamagedPartition("not a partition file")
        raw = os.pread(fd, header_size, _PREFIX.size)
        if len(raw) != header_size or hashlib.sha256(raw).digest() != header_sha:
            raise DamagedPartition("its header differs from its checksum")
        header = _Header.from_bytes(raw)
        if header.key != key or len(header.sha256) != num_partitions:
            raise DamagedPartition(
                f"it holds split {header.key} of {len(header.sha256)}, not {key} of {num_partitions}"
            )
        data_start = _PREFIX.size + header_size
        if os.fstat(fd).st_size != data_start + header.bounds[-1] * _INDEX.itemsize:
            raise DamagedPartition("its size differs from its header's")
        start, stop = header.bounds[partition_id], header.bounds[partition_id + 1]
        raw_slice = os.pread(fd, (stop - start) * _INDEX.itemsize, data_start + start * _INDEX.itemsize)
        indices = np.frombuffer(raw_slice, dtype=_INDEX).astype(np.int64)
        if len(indices) != stop - start or _digest(indices) != header.sha256[partition_id]:
            raise DamagedPartition(f"partition {partition_id} differs from its checksum")
        return indices

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f"{key}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
