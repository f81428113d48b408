"""A fingerprint of the data a client holds: the key of its privacy ledger.

It depends only on the client's own files (or, for a dataset that ships inside
a package, on its name), never on anything the server sends: a new seed, run
key or partitioning cannot give the same records a fresh privacy budget. Which
files a dataset reads is the dataset config's to say (``source_files``).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from aureon.config import DatasetConfig

_CHUNK = 1 << 20


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
    sources = config.source_files()
    if sources is None:
        return f"builtin:{config.name}"
    files = tuple((str(path), (stat := os.stat(path)).st_size, stat.st_mtime_ns) for path in sources)
    return f"sha256:{_files_digest(files)}"
