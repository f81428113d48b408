"""Process lifecycle: a taken port is named, and stopping a process ends its children too."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from aureon.launch.processes import LaunchError, ensure_port_free, start_process


def test_taken_port_is_reported_with_its_holder() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LaunchError, match=f"port {port} on 127.0.0.1 is already taken"):
            ensure_port_free("127.0.0.1", port, what="SuperLink")


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time, pathlib;"
        f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"pathlib.Path({str(child_pid_file)!r}).write_text(str(c.pid));"
        "time.sleep(60)"
    )
    process = start_process("parent", [sys.executable, "-c", script], env={}, cwd=tmp_path, log_path=tmp_path / "log")
    try:
        deadline = time.monotonic() + 20
        while not child_pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        child = int(child_pid_file.read_text())
        assert Path(f"/proc/{child}").exists()
    finally:
        process.stop(grace=5)
    assert not process.alive()
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
