"""Certificates and keys for a deployment, made with ``cryptography``.

A deployment needs three kinds of material: a CA that clients trust, a server
certificate signed by it whose subject alternative names cover every address
clients dial (TLS checks the name, not just the signature), and one ECDSA key
pair per SuperNode for Flower's node authentication (OpenSSH format, NIST
P-384, which is what ``flower-supernode`` and ``flwr supernode register`` load).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aureon.exceptions import AureonError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
NODE_DIR = "nodes"


class CertificateError(AureonError):
    """Certificate material is missing, malformed, or does not match the address in use."""


@dataclass(frozen=True)
class NodeKeys:
    """One SuperNode's authentication key pair (OpenSSH files)."""

    private_key: Path
    public_key: Path


@dataclass(frozen=True)
class DeploymentCerts:
    """Where the files of one deployment's certificates and keys live."""

    out: Path

    @property
    def ca_cert(self) -> Path:
        return self.out / CA_CERT

    @property
    def server_cert(self) -> Path:
        return self.out / SERVER_CERT

    @property
    def server_key(self) -> Path:
        return self.out / SERVER_KEY

    def node(self, index: int) -> NodeKeys:
        base = self.out / NODE_DIR / f"node-{index}"
        return NodeKeys(private_key=base, public_key=base.with_name(base.name + ".pub"))

    def node_public_keys(self) -> list[Path]:
        return sorted((self.out / NODE_DIR).glob("node-*.pub"))


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write via a temporary file; private keys are readable by their owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _check_hosts(hosts: Sequence[str]) -> list[str]:
    cleaned = [h.strip() for h in hosts if h.strip()]
    if not cleaned:
        raise CertificateError(
            f"hosts must name at least one address or DNS name the clients dial, got {list(hosts)!r}"
        )
    for host in cleaned:
        if any(c in host for c in " /:"):
            raise CertificateError(
                f"hosts entry {host!r} must be a bare IP address or DNS name (no port, no scheme)"
            )
    return cleaned


def generate_certs(
    *, out: Path, hosts: Sequence[str], nodes: int, valid_days: int = 365
) -> DeploymentCerts:
    """Create a CA, a server certificate for ``hosts`` and ``nodes`` node key pairs in ``out``."""
    if nodes < 0:
        raise CertificateError(f"nodes must be >= 0, got {nodes}")
    if valid_days < 1:
        raise CertificateError(f"valid_days must be >= 1, got {valid_days}")
    names = _check_hosts(hosts)
    files = DeploymentCerts(Path(out))
    now = dt.datetime.now(dt.timezone.utc)
    not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=valid_days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AUREON deployment CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )

    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )

    _write(files.out / CA_KEY, _pem_key(ca_key), private=True)
    _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(files.server_key, _pem_key(server_key), private=True)
    _write(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), private=False)
    for index in range(nodes):
        write_node_keys(files.node(index))
    return files


def write_node_keys(node: NodeKeys) -> NodeKeys:
    """A fresh P-384 key pair for one SuperNode, in the OpenSSH formats Flower loads."""
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    _write(node.private_key, private, private=True)
    _write(node.public_key, public + b"\n", private=False)
    return node


def certificate_hosts(cert_path: Path) -> list[str]:
    """The DNS names and IP addresses a certificate is valid for."""
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))]


def check_server_certs(*, certfile: Path, keyfile: Path, ca_certfile: Path, host: str) -> None:
    """Fail early, with the reason, when the server's TLS files cannot serve ``host``.

    Without this a mismatch shows up only as a client's opaque handshake error.
    """
    for field_name, path in (("certfile", certfile), ("keyfile", keyfile), ("ca-certfile", ca_certfile)):
        if not Path(path).is_file():
            raise CertificateError(f"TLS {field_name} {str(path)!r} does not exist")
    try:
        cert = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
        ca = x509.load_pem_x509_certificate(Path(ca_certfile).read_bytes())
        key = serialization.load_pem_private_key(Path(keyfile).read_bytes(), password=None)
    except ValueError as err:
        raise CertificateError(f"cannot parse the TLS files {certfile}, {keyfile}, {ca_certfile}: {err}") from err
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise CertificateError(f"TLS keyfile {keyfile} does not belong to certificate {certfile}")
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError) as err:
        raise CertificateError(
            f"server certificate {certfile} was not issued by the CA {ca_certfile}: {type(err).__name__} {err}"
        ) from err
    hosts = certificate_hosts(certfile)
    bind_any = host in ("0.0.0.0", "::", "")
    if not bind_any and host not in hosts:
        raise CertificateError(
            f"server certificate {certfile} is valid for {hosts}, not for the address {host!r} "
            f"clients will dial; regenerate it with --hosts {','.join([*hosts, host])}"
        )
    if dt.datetime.now(dt.timezone.utc) > cert.not_valid_after_utc:
        raise CertificateError(f"server certificate {certfile} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
