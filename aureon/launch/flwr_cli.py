"""Drive Flower's own CLI (``flwr run``) with clean process hygiene.

Each run gets its own FLWR_HOME (so its local SuperLink, database and logs
are its own), telemetry and update checks are off, success is judged by the
run's status in ``flwr list`` (``flwr run`` exits 0 on a failed run), and the
local SuperLink that ``flwr run`` starts is stopped by PID afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aureon.exceptions import AureonError
from aureon.launch.processes import LaunchError, flower_executable, quiet_flower_env
from aureon.launch.run_config import format_config, run_config_for


class FlowerRunError(AureonError):
    """A ``flwr`` command failed or a run did not finish successfully."""


def flower_env(flwr_home: Path) -> dict[str, str]:
    """The environment for ``flwr`` commands of one run."""
    return quiet_flower_env(flwr_home)


def _flwr(args: Sequence[str], *, flwr_home: Path, cwd: Path, timeout: float) -> dict[str, Any]:
    executable = flower_executable("flwr")
    done = subprocess.run(
        [executable, *args, "--format", "json"],
        cwd=cwd,
        env=flower_env(flwr_home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    start = done.stdout.find("{")
    if start < 0:
        raise FlowerRunError(f"`flwr {' '.join(args)}` printed no JSON: {done.stderr[-500:]}")
    reply = json.loads(done.stdout[start:])
    if not reply.get("success", False):
        raise FlowerRunError(f"`flwr {args[0]}` failed: {reply.get('error-message', reply)}")
    return reply


def submit_run(
    app_dir: Path,
    *,
    flwr_home: Path,
    overrides: Sequence[str],
    run_dir: Path,
    connection: str | None = None,
    num_supernodes: int | None = None,
    signed_fab_hash: str | None = None,
    timeout: float = 300.0,
) -> int:
    """``flwr run`` the app in ``app_dir`` with these Hydra overrides; returns the run id.

    ``connection`` names the SuperLink in $FLWR_HOME/config.toml (None: its default,
    a local simulation SuperLink with ``num_supernodes`` nodes). With ``signed_fab_hash``
    the FAB ``flwr run`` uploaded must be the one the server signed; otherwise
    SuperNodes would refuse it, so fail here, clearly.
    """
    args = ["run", str(app_dir)]
    if connection is not None:
        args.append(connection)
    args += ["--run-config", format_config(run_config_for(overrides, run_dir))]
    if num_supernodes is not None:
        args += ["--federation-config", format_config({"num-supernodes": num_supernodes})]
    reply = _flwr(args, flwr_home=flwr_home, cwd=app_dir, timeout=timeout)
    uploaded = str(reply.get("fab-hash", ""))
    if signed_fab_hash is not None and (not uploaded or not signed_fab_hash.startswith(uploaded)):
        raise LaunchError(
            f"run {reply.get('run-id')} uploaded FAB {uploaded or '?'} but the server signed {signed_fab_hash[:8]}: "
            f"files in {app_dir} changed between signing and submission; SuperNodes will refuse it, start again"
        )
    return int(reply["run-id"])


def wait_for_run(run_id: int, *, flwr_home: Path, cwd: Path, timeout: float, poll: float = 2.0) -> dict[str, Any]:
    """Poll ``flwr list`` until the run finishes; raise unless it completed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _flwr(["list", "--run-id", str(run_id)], flwr_home=flwr_home, cwd=cwd, timeout=60)
        run = next((r for r in runs.get("runs", []) if int(r["run-id"]) == run_id), None)
        status = "" if run is None else str(run.get("status", ""))
        if status.startswith("finished"):
            if status != "finished:completed":
                raise FlowerRunError(f"run {run_id} ended as {status}: {run.get('status-details')}")  # type: ignore[union-attr]
            return run  # type: ignore[return-value]
        time.sleep(poll)
    raise FlowerRunError(f"run {run_id} did not finish within {timeout:.0f} s")


def stop_local_superlink(flwr_home: Path, *, grace: float = 10.0) -> list[int]:
    """Stop the SuperLink (and its children) that ``flwr run`` started for ``flwr_home``."""
    marker = str(flwr_home)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "flower-superlink" in cmdline and marker in cmdline:
            pids.append(int(entry.name))
    for pid in pids:
        try:
            # Flower starts the SuperLink in a session of its own: end the whole group,
            # SimulationIo and ServerApp children included, but never our own group.
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + grace
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    return pids
