"""A deployment on loopback for integration tests: `python -m server` plus SuperNodes, always cleaned up."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aureon.launch.certs import DeploymentCerts
from aureon.launch.processes import ManagedProcess, free_port, quiet_flower_env, start_process
from aureon.launch.supernode import SuperNodeSpec, start_supernode, start_supernode_when_accepted
from aureon.privacy.floor import PrivacyFloor

REPO = Path(__file__).resolve().parents[2]


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, poll: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def read_results(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return None


class Deployment:
    """One server and its clients; ``close`` stops every process it started, by process group."""

    def __init__(self, root: Path, certs: DeploymentCerts) -> None:
        self.root = root
        self.certs = certs
        self.port = free_port()
        self.control_port = free_port()
        self.server: ManagedProcess | None = None
        self.processes: list[ManagedProcess] = []

    def start_server(self, overrides: Sequence[str], *, run_dir: Path, timeout: float = 400) -> ManagedProcess:
        env = quiet_flower_env(self.root / "driver-home")
        command = [sys.executable, "-m", "server", "--certs", str(self.certs.out), "--port", str(self.port),
                   "--control-port", str(self.control_port), "--run-dir", str(run_dir), "--timeout", str(timeout), *overrides]
        self.server = start_process("server", command, env=env, cwd=REPO, log_path=self.root / f"server-{self.port}.log")
        self.processes.append(self.server)
        server = self.server
        # SuperNodes give up when their key is not registered yet: start them after the run is submitted.
        wait_until(lambda: server.log_contains("submitted") or not server.alive(), timeout=180,
                   what="the server to register the node keys and submit the run")
        if not server.alive():
            raise RuntimeError(f"the server exited early:\n{server.log_tail()}")
        return server

    def start_client(
        self, partition_id: int, *, key: Path | None, insecure: bool = False, state_dir: Path | None = None,
        max_retries: int | None = None, num_partitions: int = 3, rejoin: bool = False,
    ) -> ManagedProcess:
        spec = SuperNodeSpec(
            superlink=f"127.0.0.1:{self.port}",
            partition_id=partition_id,
            num_partitions=num_partitions,
            flwr_home=self.root / f"client-home-{partition_id}-{len(self.processes)}",
            state_dir=state_dir or self.root / f"client-state-{partition_id}",
            clientappio_port=free_port(),
            root_certificates=None if insecure else self.certs.ca_cert,
            private_key=None if insecure else key,
            trusted_entities=None if insecure else self.certs.trusted_entities,
            max_retries=max_retries,
            # as `python -m clients` starts a client; these runs' privacy=none is the test's choice
            privacy_floor=PrivacyFloor(require_dp=False, max_epsilon=8.0, deployment=True).node_config(),
        )
        if rejoin:  # a restarted node: retry while the SuperLink still sees its crashed self online
            process = start_supernode_when_accepted(spec, cwd=self.root)
        else:
            process = start_supernode(spec, cwd=self.root)
        self.processes.append(process)
        return process

    def superlink_pids(self, run_dir: Path) -> list[int]:
        return [int(p.read_text()) for p in run_dir.glob("flwr/*/superlink.pid")]

    def crash_server(self, run_dir: Path) -> None:
        """SIGKILL the driver and the SuperLink (with its ServerApp), as a machine failure would."""
        if self.server is not None:
            self.server.kill()
        for pid in self.superlink_pids(run_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self, run_dirs: Sequence[Path] = ()) -> None:
        for process in reversed(self.processes):
            process.stop(grace=5)
        for run_dir in run_dirs:
            for pid in self.superlink_pids(run_dir):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path})\n{p.log_tail(3000)}" for p in self.processes)
