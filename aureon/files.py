"""Durable, atomic file writes: the one way AUREON writes a file that matters.

A crash, a kill or a power loss at any moment leaves either the old file or
the new one, never a mix or an empty file: the bytes go to a fresh temporary
file beside the target (created with O_EXCL | O_NOFOLLOW, so a planted file or
symlink is never followed), which is fsynced, renamed over the target, and
then the directory is fsynced so the rename itself survives a power loss.
Secret files are created with their final mode (0600), never widened later.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from aureon.exceptions import AureonError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


class UnsafeFileError(AureonError):
    """A file AUREON was asked to write is a symlink or otherwise unsafe to replace."""


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = PUBLIC_MODE, durable: bool = True) -> Path:
    """Replace ``path`` with ``data`` atomically and durably; returns the path.

    Refuses to write through a symlink at ``path``. ``mode`` is applied when the
    temporary file is created, so a secret is never readable by others.
    ``durable=False`` skips the fsyncs: still never a torn file, but a power
    loss may lose the write (fine for a cache that can be recomputed).
    """
    return atomic_write_chunks(path, (data,), mode=mode, durable=durable)


def atomic_write_chunks(
    path: Path | str, chunks: Iterable[bytes | memoryview], *, mode: int = PUBLIC_MODE, durable: bool = True
) -> Path:
    """``atomic_write_bytes`` for content made piece by piece, too large to hold in memory at once."""
    target = Path(path)
    if target.is_symlink():
        raise UnsafeFileError(f"{target}: is a symlink; refusing to write through it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have narrowed it; never widen a secret
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_directory(target.parent)
    return target


def atomic_write_text(path: Path | str, text: str, *, mode: int = PUBLIC_MODE, durable: bool = True) -> Path:
    """``atomic_write_bytes`` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode, durable=durable)
