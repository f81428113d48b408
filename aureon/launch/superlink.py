"""The coordinator side of a deployment: a SuperLink process and the ``flwr`` CLI pointed at it.

``flower-superlink`` 1.42 serves the Fleet API (SuperNodes), the Control API
(``flwr run``/``list``/``supernode register``) and the Runtime API (ServerApp)
on one port, and its open-source build cannot authenticate Control API
callers. AUREON therefore starts it through ``aureon.launch.superlink_process``:
every API on ``127.0.0.1:<control_port>``, where this module's ``flwr`` calls
go, and only the Fleet API on the public ``host:port`` that SuperNodes dial.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aureon.files import atomic_write_text
from aureon.launch.certs import LOOPBACK, DeploymentCerts, check_server_certs
from aureon.launch.flwr_cli import FlowerRunError, _flwr, submit_run  # noqa: F401 (submit_run: re-exported)
from aureon.launch.processes import (
    LaunchError,
    ManagedProcess,
    ensure_port_free,
    quiet_flower_env,
    start_process,
    wait_for_port,
)

CONNECTION = "aureon"
DEFAULT_CONTROL_PORT = 9093  # Flower's own default Control API port
LOG = logging.getLogger(__name__)
INSECURE_WARNING = (
    "!!! INSECURE: TLS and node authentication are OFF. Model updates travel in "
    "plaintext and any process that reaches the port can join the federation. "
    "Use --insecure only for local experiments. !!!"
)


@dataclass(frozen=True)
class SuperLinkSpec:
    """How to run one SuperLink: public Fleet address, loopback Control port, TLS files (None: insecure)."""

    host: str
    port: int
    flwr_home: Path
    certs: DeploymentCerts | None
    node_auth: bool = True
    isolation: str = "subprocess"
    control_port: int = DEFAULT_CONTROL_PORT

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def control_address(self) -> str:
        return f"{LOOPBACK}:{self.control_port}"

    @property
    def signatures_dir(self) -> Path:
        """Where the server stores the signature records of the FABs it submits."""
        return self.flwr_home / "fab-signatures"

    def command(self) -> list[str]:
        if self.control_port == self.port:
            raise LaunchError(f"the Control API port must differ from the SuperLink port, both are {self.port}")
        cmd = [
            sys.executable,
            "-m",
            "aureon.launch.superlink_process",
            "--public-host",
            self.host,
            "--public-port",
            str(self.port),
        ]
        if self.certs is not None:
            cmd += ["--fab-signatures", str(self.signatures_dir)]
        cmd += [
            "--host",
            LOOPBACK,
            "--port",
            str(self.control_port),
            "--database",
            str(self.flwr_home / "superlink.db"),
            "--isolation",
            self.isolation,
        ]
        if self.certs is None:
            return [*cmd, "--insecure"]
        cmd += [
            "--ssl-certfile",
            str(self.certs.server_cert),
            "--ssl-keyfile",
            str(self.certs.server_key),
            "--ssl-ca-certfile",
            str(self.certs.ca_cert),
        ]
        return [*cmd, "--enable-supernode-auth"] if self.node_auth else cmd


def connection_toml(address: str, *, ca_cert: Path | None) -> str:
    """A ``flwr`` config.toml whose default connection is ``address`` (insecure when ``ca_cert`` is None)."""
    lines = [
        "[superlink]",
        f'default = "{CONNECTION}"',
        "",
        f"[superlink.{CONNECTION}]",
        f"address = {json.dumps(address)}",
    ]
    if ca_cert is None:
        lines.append("insecure = true")
    else:
        lines.append(f"root-certificates = {json.dumps(str(Path(ca_cert).resolve()))}")
    return "\n".join(lines) + "\n"


def write_connection(spec: SuperLinkSpec) -> Path:
    """Point ``flwr`` at this SuperLink's loopback Control API: $FLWR_HOME/config.toml."""
    spec.flwr_home.mkdir(parents=True, exist_ok=True)
    ca_cert = None if spec.certs is None else spec.certs.ca_cert
    return atomic_write_text(spec.flwr_home / "config.toml", connection_toml(spec.control_address, ca_cert=ca_cert))


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
    ensure_port_free(LOOPBACK, spec.control_port, what="SuperLink Control API")
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
    dial = LOOPBACK if spec.host in ("0.0.0.0", "") else spec.host
    up = wait_for_port(dial, spec.port, timeout=timeout) and wait_for_port(LOOPBACK, spec.control_port, timeout=timeout)
    if not up or not process.alive():
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
