"""A fingerprint of the data a client holds: the key of its privacy ledger.

It depends only on the client's own files (or, for a dataset that ships inside
a package, on its name), never on anything the server sends: a new seed, run
key or partitioning cannot give the same records a fresh privacy budget.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from aureon.config import DatasetConfig
from aureon.data.idx import MNIST_FILES, find_idx_file

_CHUNK = 1 << 20


def _source_files(config: DatasetConfig) -> list[Path]:
    """The files the dataset's loader reads."""
    folder = Path(str(config.path)).expanduser()
    if config.name == "mnist":
        return [find_idx_file(folder, stem) for stem in MNIST_FILES]
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else [folder]


@lru_cache(maxsize=16)
def _files_digest(files: tuple[tuple[str, int, int], ...]) -> str:
    sha = hashlib.sha256()
    for name, _size, _mtime in files:
        sha.update(Path(name).name.encode() + b"\0")
        with open(name, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                sha.update(chunk)
    return sha.hexdigest()


def dataset_fingerprint(config: DatasetConfig) -> str:
    """``sha256:<hex>`` of the dataset's files, or ``builtin:<name>`` for packaged data.

    Cached per process by (path, size, mtime): simulated clients ask every round.
    """
    if not config.path:
        return f"builtin:{config.name}"
    files = tuple((str(path), (stat := os.stat(path)).st_size, stat.st_mtime_ns) for path in _source_files(config))
    return f"sha256:{_files_digest(files)}"
