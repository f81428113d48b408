"""App bundles (FABs) signed by the server, verified by every SuperNode with Flower's trusted entities.

A SuperNode runs the ClientApp code inside whatever FAB a run brings, so
whoever can submit a run can run code on every client. ``flower-supernode
--trusted-entities <yaml>`` makes the SuperNode run only FABs signed by an
Ed25519 key it trusts: Flower checks ``Fab.verifications[<key id>]``, a JSON
``{"signature", "signed_at"}`` whose signature covers ``signed_at`` (8 bytes,
big-endian) followed by ``sha256(fab)``.

The open-source SuperLink of Flower 1.42 never fills ``verifications`` for a
FAB uploaded by ``flwr run`` (only Flower Hub apps carry them), so the server
signs the FAB it submits, stores the verification record under the FAB's hash,
and the SuperLink process (``aureon.launch.superlink_process``) attaches it
when a SuperNode fetches that FAB. The SuperLink holds no key and is not
trusted: a FAB without a valid signature is refused by the SuperNode.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time
import uuid
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from aureon.exceptions import AureonError
from aureon.files import PUBLIC_MODE, SECRET_MODE, atomic_write_bytes, atomic_write_text

VALID_MARKER = "valid_license"  # Flower's SuperNode refuses verification outright without it
_FAB_HASH = re.compile(r"^[0-9a-f]{64}$")


class AppSigningError(AureonError):
    """The app-signing key or a FAB's verification record is missing or malformed."""


def public_key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    """A stable ``fpk_<uuid>`` id for a key (Flower keys trusted entities by such ids)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"fpk_{uuid.UUID(bytes=hashlib.sha256(raw).digest()[:16])}"


def trusted_entities_yaml(public_key: ed25519.Ed25519PublicKey) -> str:
    """The ``--trusted-entities`` file that trusts exactly ``public_key``."""
    openssh = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{openssh.decode('ascii')} aureon-app-signing"
    return f"{public_key_id(public_key)}: {json.dumps(line)}\n"


def write_signing_key(private_path: Path, trusted_entities_path: Path) -> str:
    """A fresh Ed25519 signing key (0600) and the trusted-entities file clients get; returns the key id."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    atomic_write_bytes(private_path, private, mode=SECRET_MODE)
    atomic_write_text(trusted_entities_path, trusted_entities_yaml(key.public_key()), mode=PUBLIC_MODE)
    return public_key_id(key.public_key())


def load_signing_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """The server's app-signing key, or an error naming the file."""
    try:
        key = serialization.load_ssh_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as err:
        raise AppSigningError(f"cannot load the app-signing key {path}: {err}") from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise AppSigningError(f"app-signing key {path} must be Ed25519, got {type(key).__name__}")
    return key


def fab_verifications(fab: bytes, key: ed25519.Ed25519PrivateKey, *, signed_at: int | None = None) -> dict[str, str]:
    """``Fab.verifications`` in the format Flower's SuperNode checks against its trusted entities."""
    when = int(time.time()) if signed_at is None else signed_at
    message = when.to_bytes(8, byteorder="big") + hashlib.sha256(fab).digest()
    signature = base64.urlsafe_b64encode(key.sign(message)).rstrip(b"=").decode("ascii")
    record = json.dumps({"signature": signature, "signed_at": when})
    return {public_key_id(key.public_key()): record, VALID_MARKER: "Valid"}


class SignatureStore:
    """Verification records by FAB hash, in a folder only the server's account can write."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, fab_hash: str) -> Path:
        if not _FAB_HASH.match(fab_hash):
            raise AppSigningError(f"FAB hash must be 64 lowercase hex digits, got {fab_hash!r}")
        return self.directory / f"{fab_hash}.json"

    def save(self, fab: bytes, verifications: dict[str, str]) -> str:
        """Store the record for ``fab``; returns its hash."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fab_hash = hashlib.sha256(fab).hexdigest()
        atomic_write_text(self._path(fab_hash), json.dumps(verifications), mode=PUBLIC_MODE)
        return fab_hash

    def load(self, fab_hash: str) -> dict[str, str]:
        """The stored record, or ``{}`` when this FAB was never signed (SuperNodes then refuse it)."""
        try:
            data = json.loads(self._path(fab_hash).read_text())
        except (AppSigningError, FileNotFoundError):
            return {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise AppSigningError(f"verification record for FAB {fab_hash} is not a string map")
        return {str(k): v for k, v in data.items()}


def _build_fab(app_dir: Path) -> bytes:
    """The FAB ``flwr run`` builds from ``app_dir`` (the same Flower function)."""
    from flwr.cli.build import build_fab_from_disk

    return build_fab_from_disk(Path(app_dir))


def snapshot_app(app_dir: Path, dest: Path) -> Path:
    """Freeze the files ``flwr run`` would bundle from ``app_dir`` into the new folder ``dest``.

    Signing and then submitting this frozen copy guarantees that the FAB the
    SuperNodes receive is the one signed, even if the working tree changes in
    between. Flower builds FABs deterministically, so the copy rebuilds to the
    same bytes.
    """
    root = Path(dest).resolve()
    root.mkdir(mode=0o700, parents=True, exist_ok=False)
    with zipfile.ZipFile(io.BytesIO(_build_fab(app_dir))) as bundle:
        for entry in bundle.infolist():
            if entry.is_dir() or entry.filename.startswith(".info/"):
                continue
            target = (root / entry.filename).resolve()
            if not target.is_relative_to(root):
                raise AppSigningError(f"FAB entry {entry.filename!r} points outside {root}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bundle.read(entry))
    return root


def sign_app(app_dir: Path, *, key_path: Path, store: SignatureStore) -> str:
    """Build the FAB ``flwr run`` will build from ``app_dir``, sign it and store the record; returns its hash.

    ``app_dir`` should be a ``snapshot_app`` copy that nothing else writes to.
    """
    fab = _build_fab(app_dir)
    return store.save(fab, fab_verifications(fab, load_signing_key(key_path)))
