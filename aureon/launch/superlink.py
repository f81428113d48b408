"""The coordinator side of a deployment: a SuperLink process and the ``flwr`` CLI pointed at it.

In Flower 1.42 one HTTPS port serves the Fleet API (SuperNodes), the Control
API (``flwr run``/``list``/``supernode register``) and the ServerApp runtime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aureon.launch.certs import DeploymentCerts, check_server_certs
from aureon.launch.flwr_cli import FlowerRunError, _flwr
from aureon.launch.processes import (
    LaunchError,
    ManagedProcess,
    ensure_port_free,
    flower_executable,
    quiet_flower_env,
    start_process,
    wait_for_port,
)

CONNECTION = "aureon"
LOG = logging.getLogger(__name__)
INSECURE_WARNING = (
    "!!! INSECURE: TLS and node authentication are OFF. Model updates travel in "
    "plaintext and any process that reaches the port can join the federation. "
    "Use --insecure only for local experiments. !!!"
)


@dataclass(frozen=True)
class SuperLinkSpec:
    """How to run one SuperLink: address, TLS files (None: insecure) and node authentication."""

    host: str
    port: int
    flwr_home: Path
    certs: DeploymentCerts | None
    node_auth: bool = True
    isolation: str = "subprocess"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        executable = flower_executable("flower-superlink")
        cmd = [
            executable,
            "--host", self.host,
            "--port", str(self.port),
            "--database", str(self.flwr_home / "superlink.db"),
            "--isolation", self.isolation,
        ]
        if self.certs is None:
            return [*cmd, "--insecure"]
        cmd += [
            "--ssl-certfile", str(self.certs.server_cert),
            "--ssl-keyfile", str(self.certs.server_key),
            "--ssl-ca-certfile", str(self.certs.ca_cert),
        ]
        return [*cmd, "--enable-supernode-auth"] if self.node_auth else cmd


def write_connection(spec: SuperLinkSpec, *, dial_host: str | None = None) -> Path:
    """Point ``flwr`` at this SuperLink: $FLWR_HOME/config.toml with one default connection."""
    spec.flwr_home.mkdir(parents=True, exist_ok=True)
    host = dial_host or ("127.0.0.1" if spec.host in ("0.0.0.0", "") else spec.host)
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]",
             f"address = {json.dumps(f'{host}:{spec.port}')}"]
    if spec.certs is None:
        lines.append("insecure = true")
    else:
        lines.append(f"root-certificates = {json.dumps(str(spec.certs.ca_cert.resolve()))}")
    path = spec.flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_superlink(spec: SuperLinkSpec, *, cwd: Path, timeout: float = 60.0) -> ManagedProcess:
    """Start the SuperLink and wait until its port answers; clear errors for taken ports and bad certs."""
    if spec.certs is None:
        LOG.warning(INSECURE_WARNING)
    else:
        check_server_certs(
            certfile=spec.certs.server_cert,
            keyfile=spec.certs.server_key,
            ca_certfile=spec.certs.ca_cert,
            host=spec.host,
        )
    ensure_port_free(spec.host, spec.port, what="SuperLink")
    spec.flwr_home.mkdir(parents=True, exist_ok=True)
    write_connection(spec)
    process = start_process(
        "superlink",
        spec.command(),
        env=quiet_flower_env(spec.flwr_home),
        cwd=cwd,
        log_path=spec.flwr_home / "superlink.log",
    )
    (spec.flwr_home / "superlink.pid").write_text(str(process.pid))
    dial = "127.0.0.1" if spec.host in ("0.0.0.0", "") else spec.host
    if not wait_for_port(dial, spec.port, timeout=timeout) or not process.alive():
        tail = process.log_tail()
        process.stop()
        raise LaunchError(f"the SuperLink did not start on {spec.address}; its log ends:\n{tail}")
    return process


def register_nodes(public_keys: Sequence[Path], *, flwr_home: Path, cwd: Path) -> list[int]:
    """Register each node's public key with the SuperLink; returns the node ids it assigned."""
    node_ids = []
    for key in public_keys:
        try:
            reply = _flwr(["supernode", "register", str(key), CONNECTION], flwr_home=flwr_home, cwd=cwd, timeout=120)
        except FlowerRunError as err:
            raise LaunchError(f"registering node key {key} failed: {err}") from err
        node_ids.append(int(reply["node-id"]))
    return node_ids


def submit_run(
    app_dir: Path, *, flwr_home: Path, run_config: dict[str, Any], timeout: float = 300.0
) -> int:
    """Submit the app in ``app_dir`` to the SuperLink of ``flwr_home``; returns the run id."""
    pairs = " ".join(f"{k}={json.dumps(v)}" for k, v in run_config.items())
    reply = _flwr(["run", str(app_dir), CONNECTION, "--run-config", pairs], flwr_home=flwr_home, cwd=app_dir, timeout=timeout)
    return int(reply["run-id"])
