"""Key agreement (X25519 + HKDF-SHA256) and authenticated encryption (ChaCha20-Poly1305).

Every symmetric key is derived with HKDF from a Diffie-Hellman secret and an
``info`` string naming its purpose and round, so the encryption key and the
mask seed of one pair of clients never coincide and never repeat across rounds.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16


class CryptoError(ValueError):
    """A key, a peer's public key or a ciphertext is not valid."""


def generate_private_key() -> bytes:
    """A fresh X25519 private key (raw 32 bytes) from the OS CSPRNG."""
    return X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def public_key(private_key: bytes) -> bytes:
    """The raw 32-byte public key of a raw private key."""
    return _private(private_key).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _private(raw: bytes) -> X25519PrivateKey:
    if not isinstance(raw, bytes) or len(raw) != KEY_BYTES:
        raise CryptoError(f"an X25519 private key must be {KEY_BYTES} bytes")
    return X25519PrivateKey.from_private_bytes(raw)


def derive_key(private_key: bytes, peer_public_key: bytes, *, info: bytes) -> bytes:
    """A 32-byte key shared by the two owners of the key pairs, bound to ``info``."""
    return derive_keys(private_key, [(peer_public_key, info)])[0]


def derive_keys(private_key: bytes, peers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """``derive_key`` for many (peer public key, info) pairs; loads the private key once."""
    own = _private(private_key)
    keys = []
    for peer_public_key, info in peers:
        if not isinstance(peer_public_key, bytes) or len(peer_public_key) != KEY_BYTES:
            raise CryptoError(f"an X25519 public key must be {KEY_BYTES} bytes")
        try:
            secret = own.exchange(X25519PublicKey.from_public_bytes(peer_public_key))
        except ValueError as error:  # low-order point: all-zero shared secret
            raise CryptoError(f"key agreement failed: {error}") from error
        keys.append(HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(secret))
    return keys


def encrypt(key: bytes, plaintext: bytes, *, associated_data: bytes) -> bytes:
    """Nonce followed by the ChaCha20-Poly1305 ciphertext and tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, associated_data)


def decrypt(key: bytes, blob: bytes, *, associated_data: bytes) -> bytes:
    """Inverse of ``encrypt``; raises CryptoError if the blob was altered or misaddressed."""
    if not isinstance(blob, bytes) or len(blob) < NONCE_BYTES + TAG_BYTES:
        raise CryptoError("ciphertext too short")
    try:
        return ChaCha20Poly1305(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
    except InvalidTag as error:
        raise CryptoError("ciphertext failed authentication") from error
