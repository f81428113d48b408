"""The client side of a deployment: one SuperNode process that runs AUREON's ClientApp.

With TLS on, the SuperNode gets the server's trusted-entities file
(``--trusted-entities``): it runs only app bundles signed by the server's
app-signing key and answers any other run with an error instead of its code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aureon import keys
from aureon.launch.processes import (
    LaunchError,
    ManagedProcess,
    ensure_port_free,
    flower_executable,
    quiet_flower_env,
    start_process,
)
from aureon.launch.run_config import format_config, join_overrides
from aureon.launch.superlink import INSECURE_WARNING

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuperNodeSpec:
    """One SuperNode: where the SuperLink is, who this node is, and its local state and data."""

    superlink: str
    partition_id: int
    num_partitions: int
    flwr_home: Path
    state_dir: Path
    clientappio_port: int
    root_certificates: Path | None = None
    private_key: Path | None = None
    trusted_entities: Path | None = None
    overrides: Sequence[str] = field(default_factory=tuple)
    max_retries: int | None = None
    privacy_floor: Mapping[str, bool | float] = field(default_factory=dict)  # PrivacyFloor.node_config()

    @property
    def insecure(self) -> bool:
        return self.root_certificates is None

    def node_config(self) -> str:
        """Flower's ``--node-config``: space-separated key=value with TOML values."""
        entries = {
            keys.NODE_PARTITION_ID: self.partition_id,
            keys.NODE_NUM_PARTITIONS: self.num_partitions,
            keys.NODE_STATE_DIR: str(self.state_dir.resolve()),
        }
        if self.overrides:
            entries[keys.NODE_OVERRIDES] = join_overrides(self.overrides)
        entries.update(self.privacy_floor)
        return format_config(entries)  # type: ignore[arg-type]

    def command(self) -> list[str]:
        executable = flower_executable("flower-supernode")
        if self.partition_id < 0 or self.partition_id >= self.num_partitions:
            raise LaunchError(
                f"partition-id must be in [0, num-partitions={self.num_partitions}), got {self.partition_id}"
            )
        cmd = [
            executable,
            "--superlink",
            self.superlink,
            "--node-config",
            self.node_config(),
            "--port",
            str(self.clientappio_port),
        ]
        if self.max_retries is not None:
            cmd += ["--max-retries", str(self.max_retries)]
        if self.insecure:
            return [*cmd, "--insecure"]
        cmd += ["--root-certificates", str(self.root_certificates)]
        if self.private_key is not None:
            cmd += ["--auth-supernode-private-key", str(self.private_key)]
        if self.trusted_entities is not None:
            cmd += ["--trusted-entities", str(self.trusted_entities)]
        return cmd


def start_supernode(spec: SuperNodeSpec, *, cwd: Path) -> ManagedProcess:
    """Start the SuperNode; its log is ``$FLWR_HOME/supernode-<partition>.log``."""
    if spec.insecure:
        LOG.warning(INSECURE_WARNING)
    else:
        files = (
            ("--root-certificates", spec.root_certificates),
            ("--auth-key", spec.private_key),
            ("--trusted-entities", spec.trusted_entities),
        )
        for name, path in files:
            if path is not None and not Path(path).is_file():
                raise LaunchError(f"{name} file {str(path)!r} does not exist")
    ensure_port_free("127.0.0.1", spec.clientappio_port, what="SuperNode ClientAppIo")
    spec.flwr_home.mkdir(parents=True, exist_ok=True)
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    return start_process(
        f"supernode-{spec.partition_id}",
        spec.command(),
        env=quiet_flower_env(spec.flwr_home),
        cwd=cwd,
        log_path=spec.flwr_home / f"supernode-{spec.partition_id}.log",
    )


REFUSAL_MARKERS = {
    "not registered": "SuperNode authentication is enabled. All SuperNodes must be registered",
    "unknown key": "Failed to activate SuperNode",
    "no connection": "could not establish a connection to the SuperLink",
}


def refusal_reason(process: ManagedProcess) -> str | None:
    """Why the SuperLink refused this node, read from its log; None while it has not been refused."""
    text = process.log_tail(200_000)
    for reason, marker in REFUSAL_MARKERS.items():
        if marker in text:
            return reason
    return None


ACCEPTED_MARKER = "SuperNode ID:"
STILL_ONLINE_MARKER = "[code: 2004]"


def start_supernode_when_accepted(
    spec: SuperNodeSpec, *, cwd: Path, patience: float = 180.0, pause: float = 5.0
) -> ManagedProcess:
    """Start the SuperNode, starting it again while the SuperLink refuses to activate its key.

    Flower 1.42 activates a registered node only while the SuperLink sees it
    as registered or offline; a node restarted right after a crash is still
    "online" there until its heartbeats lapse, and its new SuperNode exits
    with code 2004. Retrying until then lets a restarted client rejoin.
    """
    deadline = time.monotonic() + patience
    while True:
        process = start_supernode(spec, cwd=cwd)
        while process.alive() and not process.log_contains(ACCEPTED_MARKER):
            if process.log_contains(STILL_ONLINE_MARKER) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if process.log_contains(ACCEPTED_MARKER):
            return process
        process.stop(grace=5)
        if time.monotonic() > deadline:
            raise LaunchError(
                f"the SuperLink at {spec.superlink} did not accept node {spec.partition_id} within "
                f"{patience:.0f} s; its log ends:\n{process.log_tail()}"
            )
        LOG.warning(
            "SuperLink refused to activate node %d yet (still online after a crash?); retrying", spec.partition_id
        )
        process.log_path.rename(process.log_path.with_suffix(f".refused-{int(time.time())}.log"))
        time.sleep(pause)
