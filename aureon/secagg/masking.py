"""What client and server must compute identically: derived keys, masks, commitments.

Client u sends y_u = x_u + PRG(b_u) + sum over its peers v of s(u, v) * PRG(s_uv)
(mod 2**bits), with s(u, v) = +1 if u < v and -1 otherwise, so the pairwise
masks of two clients who both send cancel in the sum; the server removes the
self masks PRG(b_u) of the senders and the pairwise masks of peers that dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

from aureon.secagg import crypto, prg, ring, shamir
from aureon.secagg.ring import RingVector

_DOMAIN: Final = b"aureon-secagg/v1/"
PLAINTEXT_BYTES: Final = 2 * shamir.SHARE_BYTES
CIPHERTEXT_BYTES: Final = crypto.NONCE_BYTES + PLAINTEXT_BYTES + crypto.TAG_BYTES


def _pair_info(purpose: bytes, server_round: int, a: int, b: int) -> bytes:
    low, high = sorted((a, b))
    return b"%s%s/%d/%d/%d" % (_DOMAIN, purpose, server_round, low, high)


def encryption_keys(private_key: bytes, peers: Mapping[int, bytes], *, server_round: int, me: int) -> dict[int, bytes]:
    """Keys of the authenticated channels between ``me`` and each peer (public keys by index)."""
    return _derive(private_key, peers, b"encryption", server_round, me)


def pairwise_seeds(private_key: bytes, peers: Mapping[int, bytes], *, server_round: int, me: int) -> dict[int, bytes]:
    """Seeds of the masks that ``me`` and each peer add with opposite signs."""
    return _derive(private_key, peers, b"mask", server_round, me)


def _derive(
    private_key: bytes, peers: Mapping[int, bytes], purpose: bytes, server_round: int, me: int
) -> dict[int, bytes]:
    order = list(peers)
    derived = crypto.derive_keys(private_key, [(peers[p], _pair_info(purpose, server_round, me, p)) for p in order])
    return dict(zip(order, derived, strict=True))


def share_associated_data(server_round: int, source: int, destination: int) -> bytes:
    """Binds an encrypted share to its round, sender and recipient."""
    return b"%sshare/%d/%d/%d" % (_DOMAIN, server_round, source, destination)


def seed_commitment(seed: bytes) -> bytes:
    """Public hash of the self-mask seed: lets the server verify a reconstruction."""
    return hashlib.sha256(_DOMAIN + b"seed/" + seed).digest()


def pack_shares(seed_share: int, key_share: int) -> bytes:
    """Plaintext of one encrypted share message."""
    return shamir.to_bytes(seed_share) + shamir.to_bytes(key_share)


def unpack_shares(plaintext: bytes) -> tuple[int, int]:
    """Inverse of ``pack_shares``; raises ValueError on a wrong size or value."""
    if len(plaintext) != PLAINTEXT_BYTES:
        raise ValueError(f"share plaintext must be {PLAINTEXT_BYTES} bytes, got {len(plaintext)}")
    half = shamir.SHARE_BYTES
    return shamir.from_bytes(plaintext[:half]), shamir.from_bytes(plaintext[half:])


def sign(me: int, peer: int) -> int:
    """+1 if ``me`` adds the pairwise mask shared with ``peer``, -1 if it subtracts it."""
    return 1 if me < peer else -1


def add_pairwise(total: RingVector, seed: bytes, direction: int, *, bits: int) -> RingVector:
    """``total + direction * PRG(seed)`` modulo 2**bits."""
    mask = prg.expand(seed, length=total.size, bits=bits)
    return ring.add(total, mask, bits) if direction > 0 else ring.sub(total, mask, bits)


def mask_input(
    vector: RingVector,
    *,
    me: int,
    self_seed: bytes,
    pairwise_seeds: Mapping[int, bytes],
    bits: int,
) -> RingVector:
    """y = x + PRG(b) + sum_v sign(me, v) PRG(s_v) modulo 2**bits, in the ring's dtype."""
    total = ring.add(ring.reduce(vector, bits), prg.expand(self_seed, length=vector.size, bits=bits), bits)
    for peer, seed in pairwise_seeds.items():
        total = add_pairwise(total, seed, sign(me, peer), bits=bits)
    return total
