"""Certificates: the server certificate chains to the CA and names the hosts; node keys load in Flower's formats."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from aureon.launch.certs import CertificateError, certificate_hosts, check_server_certs, generate_certs


def test_server_certificate_chains_to_ca_and_names_hosts(tmp_path: Path) -> None:
    files = generate_certs(out=tmp_path, hosts=["127.0.0.1", "localhost", "fl.example.org"], nodes=0)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert sorted(certificate_hosts(files.server_cert)) == ["127.0.0.1", "fl.example.org", "localhost"]
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    check_server_certs(certfile=files.server_cert, keyfile=files.server_key, ca_certfile=files.ca_cert, host="127.0.0.1")


def test_node_keys_are_p384_openssh_pairs(tmp_path: Path) -> None:
    files = generate_certs(out=tmp_path, hosts=["127.0.0.1"], nodes=2)
    assert [p.name for p in files.node_public_keys()] == ["node-0.pub", "node-1.pub"]
    node = files.node(1)
    private = load_ssh_private_key(node.private_key.read_bytes(), None)
    public = load_ssh_public_key(node.public_key.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    assert private.public_key().public_numbers() == public.public_numbers()


def test_mismatches_are_named(tmp_path: Path) -> None:
    one = generate_certs(out=tmp_path / "one", hosts=["127.0.0.1"], nodes=0)
    two = generate_certs(out=tmp_path / "two", hosts=["127.0.0.1"], nodes=0)
    with pytest.raises(CertificateError, match="not for the address '10.1.2.3'"):
        check_server_certs(certfile=one.server_cert, keyfile=one.server_key, ca_certfile=one.ca_cert, host="10.1.2.3")
    with pytest.raises(CertificateError, match="not issued by the CA"):
        check_server_certs(certfile=one.server_cert, keyfile=one.server_key, ca_certfile=two.ca_cert, host="127.0.0.1")
    with pytest.raises(CertificateError, match="does not belong to certificate"):
        check_server_certs(certfile=one.server_cert, keyfile=two.server_key, ca_certfile=one.ca_cert, host="127.0.0.1")
    with pytest.raises(CertificateError, match="bare IP address or DNS name"):
        generate_certs(out=tmp_path / "bad", hosts=["127.0.0.1:9092"], nodes=0)
