"""Key and certificate files: planted temp files and symlinks are never followed, secrets are 0600 from creation.

These reproduce the findings against the old writer (a planted ``ca.key.tmp``
left ``ca.key`` world-writable, a planted ``server.key`` symlink redirected the
write) and check node keys made on the node by ``python -m clients keygen``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    load_ssh_private_key,
    load_ssh_public_key,
)

from aureon.cli import run_cli
from aureon.files import UnsafeFileError
from aureon.launch.certs import (
    CertificateError,
    DeploymentCerts,
    generate_certs,
    keygen,
)
from clients.__main__ import main as clients_main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture()
def open_umask() -> Iterator[None]:
    """Umask 0: any file the code does not create with a narrow mode would come out 0666."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_planted_tmp_file_is_neither_used_nor_able_to_widen_the_ca_key(tmp_path: Path, open_umask: None) -> None:
    planted = tmp_path / "ca.key.tmp"
    planted.write_bytes(b"attacker's bytes")
    planted.chmod(0o666)
    generate_certs(out=tmp_path, hosts=["127.0.0.1"], nodes=0)
    assert _mode(tmp_path / "ca.key") == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "ca.key").read_bytes()
    assert planted.read_bytes() == b"attacker's bytes", "the planted file must not be written through"


def test_planted_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "certs", tmp_path / "elsewhere.txt"
    out.mkdir()
    elsewhere.write_text("not a key")
    (out / "server.key").symlink_to(elsewhere)
    with pytest.raises(UnsafeFileError, match="symlink"):
        generate_certs(out=out, hosts=["127.0.0.1"], nodes=0)
    assert elsewhere.read_text() == "not a key"
    assert (out / "server.key").is_symlink()


def test_secrets_are_0600_and_public_files_0644_under_an_open_umask(tmp_path: Path, open_umask: None) -> None:
    files = generate_certs(out=tmp_path / "certs", hosts=["127.0.0.1"], nodes=2)
    secrets = [files.out / "ca.key", files.server_key, files.app_signing_key, files.node(0).private_key, files.node(1).private_key]
    public = [files.ca_cert, files.server_cert, files.trusted_entities, files.node(0).public_key]
    assert {p.name: _mode(p) for p in secrets} == {p.name: 0o600 for p in secrets}
    assert {p.name: _mode(p) for p in public} == {p.name: 0o644 for p in public}
    assert _mode(files.out) == 0o700
    leftovers = [p.name for p in files.out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_keygen_writes_the_node_key_pair_on_the_node(tmp_path: Path, open_umask: None) -> None:
    node = keygen(tmp_path / "keys", name="alice")
    assert (node.private_key.name, node.public_key.name) == ("alice", "alice.pub")
    assert _mode(node.private_key) == 0o600 and _mode(node.public_key) == 0o644
    assert _mode(tmp_path / "keys") == 0o700
    private = load_ssh_private_key(node.private_key.read_bytes(), None)
    public = load_ssh_public_key(node.public_key.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert private.public_key().public_numbers() == public.public_numbers()
    assert b"PRIVATE" not in node.public_key.read_bytes()


def test_keygen_keeps_an_existing_identity_unless_forced(tmp_path: Path) -> None:
    first = keygen(tmp_path, name="node").private_key.read_bytes()
    with pytest.raises(CertificateError, match="already exists"):
        keygen(tmp_path, name="node")
    assert (tmp_path / "node").read_bytes() == first
    assert keygen(tmp_path, name="node", overwrite=True).private_key.read_bytes() != first
    with pytest.raises(CertificateError, match="plain file name"):
        keygen(tmp_path, name="../escape")


def test_a_public_key_sent_in_by_a_client_is_registered_by_the_server(tmp_path: Path) -> None:
    files = generate_certs(out=tmp_path / "certs", hosts=["127.0.0.1"], nodes=1)
    sent = keygen(tmp_path / "client", name="alice").public_key
    (files.out / "nodes" / "alice.pub").write_bytes(sent.read_bytes())
    assert [p.name for p in DeploymentCerts(files.out).node_public_keys()] == ["alice.pub", "node-0.pub"]


def test_clients_keygen_command_and_its_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(clients_main, ["keygen", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "node").is_file() and (tmp_path / "node.pub").is_file()
    assert "send it to the server's operator" in capsys.readouterr().out
    assert run_cli(clients_main, ["keygen", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "already exists" in err and "\n" not in err
