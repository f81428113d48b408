"""`python -m server certs` and `python -m clients` run as a user runs them: real subprocesses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUREON_DEBUG": "0", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_certs_writes_every_file_with_private_modes(tmp_path: Path) -> None:
    done = _run("server", "certs", "--out", "certs", "--hosts", "127.0.0.1,localhost", "--nodes", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    certs = tmp_path / "certs"
    for public in ("ca.crt", "server.crt", "trusted-entities.yaml", "nodes/node-0.pub"):
        assert (certs / public).is_file(), public
    for secret in ("ca.key", "server.key", "app-signing.key", "nodes/node-0"):
        assert _mode(certs / secret) == 0o600, secret


def test_clients_keygen_then_a_second_keygen_is_one_line_exit_2(tmp_path: Path) -> None:
    first = _run("clients", "keygen", "--out", "keys", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert _mode(tmp_path / "keys" / "node") == 0o600 and (tmp_path / "keys" / "node.pub").is_file()
    again = _run("clients", "keygen", "--out", "keys", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.startswith("error: ") and again.stderr.count("\n") == 1
    assert "Traceback" not in again.stderr


def test_clients_ledger_and_floor_errors_as_a_user_sees_them(tmp_path: Path) -> None:
    shown = _run("clients", "ledger", "show", "--state-dir", "state", cwd=tmp_path)
    assert shown.returncode == 0 and "no privacy spent yet" in shown.stdout
    refused = _run(
        "clients", "--partition-id", "0", "--num-partitions", "1", "--server", "127.0.0.1:1",
        "--max-epsilon", "inf", cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: --max-epsilon must be a finite number > 0, got inf"
