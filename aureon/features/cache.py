"""A disk cache for computed feature arrays, safe for concurrent processes.

The clients of a simulation run in several worker processes; the first to need
a dataset's features computes them under a file lock, the others wait and load.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/aureon/features``, or ``~/.cache/aureon/features``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aureon" / "features"


def content_key(arrays: Iterable[np.ndarray], settings: str) -> str:
    """A name that changes whenever the input arrays or the transform's settings do."""
    digest = hashlib.sha256(settings.encode())
    for array in arrays:
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:32]


def cached_arrays(
    cache_dir: Path, key: str, names: list[str], compute: Callable[[], list[np.ndarray]]
) -> list[np.ndarray]:
    """Load ``names`` saved under ``key``, or compute, save (atomically) and return them."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = [cache_dir / f"{key}.{name}.npy" for name in names]
    with open(cache_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(path.exists() for path in paths):
            return [np.load(path) for path in paths]
        arrays = compute()
        for path, array in zip(paths, arrays, strict=True):
            partial = path.with_suffix(".partial.npy")
            np.save(partial, array)
            os.replace(partial, path)
        return arrays
