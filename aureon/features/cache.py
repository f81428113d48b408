"""A disk cache for computed feature arrays, safe for concurrent processes.

The clients of a simulation run in several worker processes; the first to need
a dataset's features computes them under a file lock, the others wait and load.
A cache file that cannot be read is a miss: the arrays are computed again and
the file replaced.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from aureon.exceptions import describe
from aureon.files import atomic_write_bytes

LOG = logging.getLogger(__name__)


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


def _load_all(paths: list[Path]) -> list[np.ndarray] | None:
    """The cached arrays, or None when any is missing or unreadable (a miss: recompute).

    A cache file damaged by a crash, a full disk or a stray edit must cost a
    recomputation, never a failed run.
    """
    if not all(path.exists() for path in paths):
        return None
    try:
        return [np.load(path, allow_pickle=False) for path in paths]
    except (OSError, EOFError, ValueError) as err:
        LOG.warning("feature cache %s is unreadable (%s); recomputing", paths[0].parent, describe(err))
        return None


def cached_arrays(
    cache_dir: Path, key: str, names: list[str], compute: Callable[[], list[np.ndarray]]
) -> list[np.ndarray]:
    """Load ``names`` saved under ``key``, or compute, save (atomically) and return them."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = [cache_dir / f"{key}.{name}.npy" for name in names]
    with open(cache_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = _load_all(paths)
        if cached is not None:
            return cached
        arrays = compute()
        for path, array in zip(paths, arrays, strict=True):
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            atomic_write_bytes(path, buffer.getvalue())
        return arrays
