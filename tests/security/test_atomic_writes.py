"""The one atomic write: a crash mid-write leaves the old file, the rename itself is made durable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aureon.files import SECRET_MODE, UnsafeFileError, atomic_write_bytes


def test_the_file_and_then_its_directory_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomic_write_bytes(tmp_path / "ledger.json", b"{}")
    assert synced == ["file", "dir"]


def test_a_crash_mid_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoint.npz"
    atomic_write_bytes(target, b"round 1")

    def power_cut(fd: int) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError, match="power cut"):
        atomic_write_bytes(target, b"round 2, half written")
    assert target.read_bytes() == b"round 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_secrets_are_private_from_creation_and_symlinks_are_refused(tmp_path: Path) -> None:
    secret = atomic_write_bytes(tmp_path / "key", b"k", mode=SECRET_MODE)
    assert stat.S_IMODE(secret.stat().st_mode) == SECRET_MODE
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeFileError, match="symlink"):
        atomic_write_bytes(tmp_path / "link", b"x")
    assert not (tmp_path / "elsewhere").exists()
