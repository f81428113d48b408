"""Certificates and keys for a deployment, made with ``cryptography``.

A deployment needs four kinds of material: a CA that clients trust, a server
certificate signed by it whose subject alternative names cover every address
clients dial (TLS checks the name, not just the signature) and the loopback
address (the server's own ``flwr`` calls and ServerApp dial the Control and
Runtime APIs there), an Ed25519 app-signing key whose public half is the
SuperNodes' trusted entity (see ``aureon.launch.app_signing``), and one ECDSA
key pair per SuperNode for Flower's node authentication (OpenSSH format, NIST
P-384, which is what ``flower-supernode`` and ``flwr supernode register`` load).
A node's key pair is best made on the node (``python -m clients keygen``), so
that its private key never exists anywhere else.

Every file is written through ``aureon.files.atomic_write_bytes``: a fresh
O_EXCL temporary file, no symlink followed, private keys 0600 from creation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aureon.exceptions import AureonError
from aureon.files import PUBLIC_MODE, SECRET_MODE, atomic_write_bytes
from aureon.launch.app_signing import write_signing_key

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
NODE_DIR = "nodes"
APP_SIGNING_KEY = "app-signing.key"
TRUSTED_ENTITIES = "trusted-entities.yaml"
LOOPBACK = "127.0.0.1"


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

    @property
    def app_signing_key(self) -> Path:
        return self.out / APP_SIGNING_KEY

    @property
    def trusted_entities(self) -> Path:
        return self.out / TRUSTED_ENTITIES

    def node(self, index: int) -> NodeKeys:
        return node_key_paths(self.out / NODE_DIR, f"node-{index}")

    def node_public_keys(self) -> list[Path]:
        """Every ``nodes/*.pub``: server-made ``node-<i>.pub`` and keys sent in by clients."""
        return sorted((self.out / NODE_DIR).glob("*.pub"))


def node_key_paths(directory: Path, name: str) -> NodeKeys:
    """``<directory>/<name>`` (private) and ``<directory>/<name>.pub``, as ssh-keygen names them."""
    if not name or "/" in name or name.startswith(".") or name.endswith(".pub"):
        raise CertificateError(f"node key name must be a plain file name without .pub, got {name!r}")
    base = Path(directory) / name
    return NodeKeys(private_key=base, public_key=base.with_name(name + ".pub"))


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
            raise CertificateError(f"hosts entry {host!r} must be a bare IP address or DNS name (no port, no scheme)")
    return cleaned


def generate_certs(*, out: Path, hosts: Sequence[str], nodes: int, valid_days: int = 365) -> DeploymentCerts:
    """Create a CA, a server certificate for ``hosts`` and ``nodes`` node key pairs in ``out``."""
    if nodes < 0:
        raise CertificateError(f"nodes must be >= 0, got {nodes}")
    if valid_days < 1:
        raise CertificateError(f"valid_days must be >= 1, got {valid_days}")
    names = _check_hosts(hosts)
    if LOOPBACK not in names:
        names.append(LOOPBACK)  # the server dials its own Control and Runtime APIs on loopback
    files = DeploymentCerts(Path(out))
    files.out.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
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
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
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
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )

    atomic_write_bytes(files.out / CA_KEY, _pem_key(ca_key), mode=SECRET_MODE)
    atomic_write_bytes(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), mode=PUBLIC_MODE)
    atomic_write_bytes(files.server_key, _pem_key(server_key), mode=SECRET_MODE)
    atomic_write_bytes(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), mode=PUBLIC_MODE)
    write_signing_key(files.app_signing_key, files.trusted_entities)
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
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    atomic_write_bytes(node.private_key, private, mode=SECRET_MODE)
    atomic_write_bytes(node.public_key, public + b"\n", mode=PUBLIC_MODE)
    return node


def keygen(out: Path, *, name: str = "node", overwrite: bool = False) -> NodeKeys:
    """A node's key pair made on the node itself: only the ``.pub`` file ever leaves it.

    An existing private key is this node's registered identity: it is kept
    unless ``overwrite`` says to replace it.
    """
    node = node_key_paths(Path(out), name)
    if node.private_key.exists() and not overwrite:
        raise CertificateError(
            f"{node.private_key} already exists (this node's registered identity); "
            "pass --force to replace it, then register the new .pub with the server"
        )
    Path(out).mkdir(mode=0o700, parents=True, exist_ok=True)
    return write_node_keys(node)


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
    if LOOPBACK not in hosts:
        raise CertificateError(
            f"server certificate {certfile} is valid for {hosts} but not for {LOOPBACK}, where the "
            f"server reaches its own Control API; regenerate it with --hosts {','.join([*hosts, LOOPBACK])}"
        )
    bind_any = host in ("0.0.0.0", "::", "")
    if not bind_any and host not in hosts:
        raise CertificateError(
            f"server certificate {certfile} is valid for {hosts}, not for the address {host!r} "
            f"clients will dial; regenerate it with --hosts {','.join([*hosts, host])}"
        )
    if dt.datetime.now(dt.UTC) > cert.not_valid_after_utc:
        raise CertificateError(f"server certificate {certfile} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
