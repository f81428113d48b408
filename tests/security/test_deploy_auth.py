"""Real SuperLink and SuperNode processes on 127.0.0.1: who may use the Control API, which apps nodes run.

A stranger holds only ``ca.crt`` and dials the SuperLink's public port: Flower's
``flwr supernode register`` and ``flwr list`` must fail there, while the
server's own calls on the loopback Control port work. A SuperNode given the
server's trusted-entities file must refuse a run whose app bundle the server
did not sign. Every process is stopped in ``finally``, pass or fail.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aureon.launch.certs import (
    DeploymentCerts,
    NodeKeys,
    generate_certs,
    write_node_keys,
)
from aureon.launch.processes import (
    ManagedProcess,
    flower_executable,
    free_port,
    quiet_flower_env,
)
from aureon.launch.superlink import (
    CONNECTION,
    SuperLinkSpec,
    connection_toml,
    register_nodes,
    start_superlink,
    submit_run,
)
from aureon.launch.supernode import ACCEPTED_MARKER, SuperNodeSpec, start_supernode
from tests.launch.deployment import REPO, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.deployment]

FLWR_TIMEOUT = 60
UNSIGNED_RUN = "dataset=digits model=logreg privacy=none num_clients=1 num_rounds=1 deployment.min_available_nodes=1"


@dataclass
class Link:
    """A started SuperLink, its certificates and the owner's FLWR_HOME (loopback Control API)."""

    spec: SuperLinkSpec
    certs: DeploymentCerts
    process: ManagedProcess


@pytest.fixture()
def link(tmp_path: Path) -> Iterator[Link]:
    certs = generate_certs(out=tmp_path / "certs", hosts=["127.0.0.1", "localhost"], nodes=1)
    spec = SuperLinkSpec(host="127.0.0.1", port=free_port(), control_port=free_port(),
                         flwr_home=tmp_path / "owner-home", certs=certs)
    process = start_superlink(spec, cwd=tmp_path)
    try:
        register_nodes(certs.node_public_keys(), flwr_home=spec.flwr_home, cwd=tmp_path)
        yield Link(spec=spec, certs=certs, process=process)
    finally:
        process.stop(grace=5)


def _flwr(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([flower_executable("flwr"), *args, "--format", "json"], env=quiet_flower_env(home),
                          cwd=home, capture_output=True, text=True, timeout=FLWR_TIMEOUT, check=False)


def _succeeded(done: subprocess.CompletedProcess[str]) -> bool:
    start = done.stdout.find("{")
    return done.returncode == 0 and start >= 0 and bool(json.loads(done.stdout[start:]).get("success"))


def _stranger_home(root: Path, link: Link) -> Path:
    """A FLWR_HOME holding only the CA certificate and the address SuperNodes dial."""
    home = root / "stranger-home"
    home.mkdir()
    (home / "ca.crt").write_bytes(link.certs.ca_cert.read_bytes())
    (home / "config.toml").write_text(connection_toml(link.spec.address, ca_cert=home / "ca.crt"))
    return home


def test_stranger_with_only_the_ca_certificate_cannot_use_the_control_api(tmp_path: Path, link: Link) -> None:
    home = _stranger_home(tmp_path, link)
    stranger = write_node_keys(NodeKeys(private_key=tmp_path / "stranger", public_key=tmp_path / "stranger.pub"))

    register = _flwr(["supernode", "register", str(stranger.public_key)], home)
    listing = _flwr(["list"], home)
    assert not _succeeded(register), register.stdout + register.stderr
    assert not _succeeded(listing), listing.stdout + listing.stderr

    log = link.process.log_tail(200_000)
    assert '"POST /v1/control/register-node HTTP/1.1" 403' in log
    assert '"POST /v1/control/list-runs HTTP/1.1" 403' in log
    owner_nodes = _flwr(["supernode", "list"], link.spec.flwr_home)
    assert _succeeded(owner_nodes) and _succeeded(_flwr(["list"], link.spec.flwr_home))
    nodes = json.loads(owner_nodes.stdout[owner_nodes.stdout.find("{"):])["nodes"]
    assert len(nodes) == 1, f"only the operator's registered node may exist: {nodes}"


def test_supernode_refuses_an_app_bundle_the_server_did_not_sign(tmp_path: Path, link: Link) -> None:
    node = link.certs.node(0)
    spec = SuperNodeSpec(
        superlink=link.spec.address, partition_id=0, num_partitions=1, flwr_home=tmp_path / "node-home",
        state_dir=tmp_path / "node-state", clientappio_port=free_port(), root_certificates=link.certs.ca_cert,
        private_key=node.private_key, trusted_entities=link.certs.trusted_entities, max_retries=3,
    )
    supernode = start_supernode(spec, cwd=tmp_path)
    try:
        wait_until(lambda: supernode.log_contains(ACCEPTED_MARKER) or not supernode.alive(), timeout=90,
                   what="the SuperNode to be accepted")
        assert supernode.alive(), supernode.log_tail()
        # Someone on the Control API without the app-signing key: a plain `flwr run` of the same app.
        submit_run(REPO, flwr_home=link.spec.flwr_home, overrides=UNSIGNED_RUN.split(),
                   run_dir=tmp_path / "run", connection=CONNECTION)
        wait_until(lambda: supernode.log_contains("FAB verification failed"), timeout=240,
                   what="the SuperNode to refuse the unsigned app bundle", poll=0.5)
        assert not supernode.log_contains("Start `flwr-clientapp` process"), supernode.log_tail()
    finally:
        supernode.stop(grace=5)
