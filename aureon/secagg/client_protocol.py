"""The client's side of SecAgg/SecAgg+ as a state machine over protocol messages.

Each method takes the server's request (the message's protocol ConfigRecord),
checks it against what this client saw in earlier stages, and returns the
reply; the state between stages round-trips through a ConfigRecord so that a
Flower ClientApp can keep it in ``context.state``. The checks are what make
the protocol safe against a curious server: a client masks at most once per
round, answers at most one unmasking request, never reveals both shares of
the same peer, and refuses to unmask when fewer than ``threshold`` clients of
its neighbourhood survive.

Rounds only move forward: a client accepts one setup per round, for a round
later than any it accepted before, and each stage only after the previous
one. Without that, a server could run one round twice, with and without a
victim, and subtract the two sums. ``last_round`` and ``last_commitment``
(the seed commitment advertised in that setup) survive the end of a round
and a refused request; ``progress`` exports them for the ClientApp to keep
beyond the process, and ``remember`` takes them back after a restart.

Secrets come from the OS CSPRNG on purpose (not from the run seed): a
seeded mask would be a mask the server can recompute.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
from flwr.app import ConfigRecord, ConfigRecordValues

from aureon.secagg import crypto, fixed_point, graph, masking, messages, prg, ring, shamir
from aureon.secagg.errors import MalformedMessage, ProtocolAbort
from aureon.secagg.ring import RingVector

# the stages of a round, in order (ClientState.stage)
IDLE: Final = 0
KEYS_SENT: Final = 1
SHARES_SENT: Final = 2
READY_TO_MASK: Final = 3
MASKED: Final = 4
UNMASKED: Final = 5
MAX_INDEX: Final = 1 << 20  # clients per run: bounds the work of rebuilding the neighbour graph
PROGRESS_ROUND: Final = "last-round"
PROGRESS_COMMITMENT: Final = "last-commitment"
MAX_VECTOR_LENGTH: Final = 1 << 34

_T = TypeVar("_T", int, float, bytes)


@dataclass
class ClientState:
    """Everything a client must remember from one stage to the next, within a round."""

    stage: int = IDLE
    server_round: int = -1
    index: int = 0
    num_clients: int = 0
    neighbours: list[int] = field(default_factory=list)
    threshold: int = 0
    modulus_bits: int = 0
    quantization_bits: int = 0
    clipping_range: float = 0.0
    max_weight: int = 0
    vector_length: int = 0
    encryption_private: bytes = b""
    mask_private: bytes = b""
    seed: bytes = b""
    peers: list[int] = field(default_factory=list)
    peer_mask_keys: list[bytes] = field(default_factory=list)
    channel_keys: list[bytes] = field(default_factory=list)  # derived encryption keys, per peer
    own_seed_share: bytes = b""
    own_key_share: bytes = b""
    sources: list[int] = field(default_factory=list)
    seed_shares: list[bytes] = field(default_factory=list)
    key_shares: list[bytes] = field(default_factory=list)
    # what answers a repeated request (a retransmission) with the reply already sent
    setup_digest: bytes = b""
    shares_digest: bytes = b""
    sent_ciphertexts: list[bytes] = field(default_factory=list)
    # keys generated ahead for the next round (see SecAggClient.prepare)
    prepared_round: int = -1
    prepared_encryption_private: bytes = b""
    prepared_mask_private: bytes = b""
    prepared_seed: bytes = b""
    # the last setup this client accepted, kept across rounds (never moves back)
    last_round: int = -1
    last_commitment: bytes = b""

    def to_record(self) -> ConfigRecord:
        """The state as a ConfigRecord, for ``context.state``."""
        return ConfigRecord({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_record(cls, record: ConfigRecord | None) -> ClientState:
        """The state ``to_record`` wrote (a fresh one for None); a field missing keeps its default.

        MalformedMessage if a field holds a value of another kind than the field's.
        """
        if record is None:
            return cls()
        d = cls()
        return cls(
            stage=_kept(record, "stage", int, d.stage),
            server_round=_kept(record, "server_round", int, d.server_round),
            index=_kept(record, "index", int, d.index),
            num_clients=_kept(record, "num_clients", int, d.num_clients),
            neighbours=_kept_list(record, "neighbours", int),
            threshold=_kept(record, "threshold", int, d.threshold),
            modulus_bits=_kept(record, "modulus_bits", int, d.modulus_bits),
            quantization_bits=_kept(record, "quantization_bits", int, d.quantization_bits),
            clipping_range=_kept(record, "clipping_range", float, d.clipping_range),
            max_weight=_kept(record, "max_weight", int, d.max_weight),
            vector_length=_kept(record, "vector_length", int, d.vector_length),
            encryption_private=_kept(record, "encryption_private", bytes, d.encryption_private),
            mask_private=_kept(record, "mask_private", bytes, d.mask_private),
            seed=_kept(record, "seed", bytes, d.seed),
            peers=_kept_list(record, "peers", int),
            peer_mask_keys=_kept_list(record, "peer_mask_keys", bytes),
            channel_keys=_kept_list(record, "channel_keys", bytes),
            own_seed_share=_kept(record, "own_seed_share", bytes, d.own_seed_share),
            own_key_share=_kept(record, "own_key_share", bytes, d.own_key_share),
            sources=_kept_list(record, "sources", int),
            seed_shares=_kept_list(record, "seed_shares", bytes),
            key_shares=_kept_list(record, "key_shares", bytes),
            setup_digest=_kept(record, "setup_digest", bytes, d.setup_digest),
            shares_digest=_kept(record, "shares_digest", bytes, d.shares_digest),
            sent_ciphertexts=_kept_list(record, "sent_ciphertexts", bytes),
            prepared_round=_kept(record, "prepared_round", int, d.prepared_round),
            prepared_encryption_private=_kept(
                record, "prepared_encryption_private", bytes, d.prepared_encryption_private
            ),
            prepared_mask_private=_kept(record, "prepared_mask_private", bytes, d.prepared_mask_private),
            prepared_seed=_kept(record, "prepared_seed", bytes, d.prepared_seed),
            last_round=_kept(record, "last_round", int, d.last_round),
            last_commitment=_kept(record, "last_commitment", bytes, d.last_commitment),
        )


def _kind_error(name: str, expected: str, value: ConfigRecordValues) -> MalformedMessage:
    # the value itself is left out: the fields hold private keys and seeds
    return MalformedMessage(f"field {name!r} of the kept client state must be {expected}, got a {type(value).__name__}")


def _kept(record: ConfigRecord, name: str, kind: type[_T], default: _T) -> _T:
    """Scalar field ``name`` of a kept ClientState record, or ``default`` when absent."""
    if name not in record:
        return default
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, kind):  # no field is a bool, and a bool is an int
        raise _kind_error(name, kind.__name__, value)
    return value


def _kept_list(record: ConfigRecord, name: str, kind: type[_T]) -> list[_T]:
    """List field ``name`` of a kept ClientState record (a new list), or [] when absent."""
    if name not in record:
        return []
    value = record[name]
    if not isinstance(value, list):
        raise _kind_error(name, f"a list of {kind.__name__}", value)
    items: list[_T] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, kind):
            raise _kind_error(name, f"a list of {kind.__name__}", value)
        items.append(item)
    return items


class SecAggClient:
    """One client's protocol state; one instance per message, rebuilt from ``state``."""

    def __init__(self, *, state: ClientState | None = None) -> None:
        self.state = state or ClientState()

    # ---------------------------------------------------------------- helpers
    def _expect(self, request: ConfigRecord, stage: int, what: str) -> None:
        if self.state.stage != stage:
            raise ProtocolAbort(
                f"{what} arrived at stage {self.state.stage}, expected stage {stage}; "
                "a request out of order (or repeated) is refused"
            )
        got = messages.read_int(request, messages.ROUND, low=0, high=1 << 62)
        if got != self.state.server_round:
            age = "a stale" if got < self.state.server_round else "another"
            raise ProtocolAbort(
                f"{what} is for round {got}, this client is in round {self.state.server_round}; "
                f"{age} round's request is refused"
            )

    def _reply(self, values: Mapping[str, ConfigRecordValues]) -> ConfigRecord:
        record = ConfigRecord({messages.ROUND: self.state.server_round, messages.INDEX: self.state.index})
        for name, value in values.items():
            record[name] = value
        return record

    # ------------------------------------------------------ progress record
    def progress(self) -> ConfigRecord:
        """The last setup accepted, to be kept where a restarted client finds it again."""
        return ConfigRecord({PROGRESS_ROUND: self.state.last_round, PROGRESS_COMMITMENT: self.state.last_commitment})

    def remember(self, record: ConfigRecord | None) -> None:
        """Adopt a progress record kept by an earlier run of this client, unless ours is newer.

        On the same round with another commitment the kept record wins: this
        process then accepted a second setup of a round the earlier one had
        already set up, and ``mask`` must refuse it.
        """
        if record is None:
            return
        last_round = messages.read_int(record, PROGRESS_ROUND, low=-1, high=1 << 62)
        commitment = record.get(PROGRESS_COMMITMENT, b"")
        if not isinstance(commitment, bytes):
            raise MalformedMessage(f"field {PROGRESS_COMMITMENT!r} of the progress record must be bytes")
        if last_round >= self.state.last_round:
            self.state.last_round, self.state.last_commitment = last_round, commitment

    # --------------------------------------------------------- stages 0 and 1
    def setup(self, request: ConfigRecord, *, prepared: bool = False) -> ConfigRecord:
        """Accept the round's parameters and advertise two public keys and a seed commitment.

        Refused for a round not later than the last one set up (one setup per
        round), or when the neighbours sent are not the ones the committed
        graph seed gives. With ``prepared``, the keys are the ones ``prepare``
        advertised during the previous round; a client that no longer holds
        them refuses (its peers already encrypt to those keys).
        """
        server_round = messages.read_int(request, messages.ROUND, low=0, high=1 << 62)
        if self._repeats_setup(request, server_round):
            s = self.state
            return self._reply(_public_keys(s.encryption_private, s.mask_private, s.seed))
        self._check_forward(server_round)
        num_clients = messages.read_int(request, messages.NUM_CLIENTS, low=2, high=MAX_INDEX)
        index = messages.read_int(request, messages.INDEX, low=1, high=num_clients)
        neighbours = messages.read_indices(request, messages.NEIGHBOURS, high=num_clients)
        size = messages.read_int(request, messages.NEIGHBOURHOOD_SIZE, low=2, high=num_clients)
        threshold = messages.read_int(request, messages.THRESHOLD, low=2, high=num_clients)
        modulus_bits = messages.read_int(request, messages.MODULUS_BITS, low=2, high=ring.MAX_MODULUS_BITS)
        quantization_bits = messages.read_int(
            request,
            messages.QUANTIZATION_BITS,
            low=1,
            high=min(modulus_bits - 1, fixed_point.MAX_QUANTIZATION_BITS),
        )
        clipping_range = messages.read_float(request, messages.CLIPPING_RANGE)
        max_weight = messages.read_int(request, messages.MAX_WEIGHT, low=1, high=1 << 62)
        vector_length = messages.read_int(request, messages.VECTOR_LENGTH, low=2, high=MAX_VECTOR_LENGTH)
        graph_seed = messages.read_bytes(request, messages.GRAPH_SEED, size=graph.GRAPH_SEED_BYTES)
        if index in neighbours or len(neighbours) != size - 1:
            raise MalformedMessage(
                f"field {messages.NEIGHBOURS!r} must list {size - 1} other clients, got {neighbours!r}"
            )
        if threshold <= size // 2 or threshold > size:
            raise ProtocolAbort(
                f"threshold {threshold} must be more than half of the neighbourhood ({size}) "
                "and at most all of it; a lower one would let a minority unmask this client"
            )
        _check_neighbours(neighbours, index=index, graph_seed=graph_seed, num_clients=num_clients, size=size)
        keys_ = self._keys_for(server_round, prepared=prepared)
        self.state = ClientState(
            stage=KEYS_SENT,
            server_round=server_round,
            index=index,
            num_clients=num_clients,
            neighbours=sorted(neighbours),
            threshold=threshold,
            modulus_bits=modulus_bits,
            quantization_bits=quantization_bits,
            clipping_range=clipping_range,
            max_weight=max_weight,
            vector_length=vector_length,
            encryption_private=keys_[0],
            mask_private=keys_[1],
            seed=keys_[2],
            last_round=server_round,
            last_commitment=masking.seed_commitment(keys_[2]),
            setup_digest=_digest(request),
        )
        return self._reply(_public_keys(*keys_))

    def _repeats_setup(self, request: ConfigRecord, server_round: int) -> bool:
        """True for the very setup accepted last, before masking: a retransmission, not a second setup.

        It gets the same public keys and changes nothing, so a server whose
        reply got lost can ask again without the client setting up twice.
        """
        s = self.state
        return (
            s.stage in (KEYS_SENT, SHARES_SENT)
            and server_round == s.server_round
            and s.setup_digest == _digest(request)
        )

    def _check_forward(self, server_round: int) -> None:
        """Refuse a setup for a round this client has already set up, or an earlier one."""
        last = self.state.last_round
        if server_round <= last:
            again = "a second setup of" if server_round == last else "a setup for the earlier"
            raise ProtocolAbort(
                f"{again} round {server_round} is refused: this client already accepted the setup "
                f"of round {last}, and takes one setup per round, rounds only moving forward "
                "(two masked inputs of one round would reveal their difference)"
            )

    def _keys_for(self, server_round: int, *, prepared: bool) -> tuple[bytes, bytes, bytes]:
        s = self.state
        if not prepared:
            return crypto.generate_private_key(), crypto.generate_private_key(), os.urandom(prg.SEED_BYTES)
        if s.prepared_round != server_round:
            raise ProtocolAbort(
                f"the server says keys for round {server_round} were advertised, but this client "
                f"holds keys for round {s.prepared_round}"
            )
        return s.prepared_encryption_private, s.prepared_mask_private, s.prepared_seed

    def prepare(self, server_round: int) -> ConfigRecord:
        """Stage 1 of ``server_round`` ahead of time: fresh keys, advertised now.

        Sent with the previous round's masked input, it lets the server run the
        next round's stages 0-2 alongside this round's unmasking; the keys are
        used for that round only.
        """
        latest = max(self.state.server_round, self.state.last_round)
        if server_round <= latest:
            raise ProtocolAbort(f"keys can only be prepared for a later round than {latest}")
        keys_ = crypto.generate_private_key(), crypto.generate_private_key(), os.urandom(prg.SEED_BYTES)
        s = self.state
        s.prepared_round = server_round
        s.prepared_encryption_private, s.prepared_mask_private, s.prepared_seed = keys_
        record = ConfigRecord({messages.ROUND: server_round})
        for name, value in _public_keys(*keys_).items():
            record[name] = value
        return record

    # ---------------------------------------------------------------- stage 2
    def share_keys(self, request: ConfigRecord) -> ConfigRecord:
        """Split the self-mask seed and the mask key among the live peers, encrypted to each.

        The same request again (its reply got lost) gets the same ciphertexts.
        """
        s = self.state
        if s.stage == SHARES_SENT and s.shares_digest == _digest(request):
            return self._reply({messages.DESTINATIONS: list(s.peers), messages.CIPHERTEXTS: list(s.sent_ciphertexts)})
        self._expect(request, KEYS_SENT, "the share-keys request")
        peers = messages.read_indices(request, messages.PEERS, high=s.num_clients)
        size = crypto.KEY_BYTES
        enc_keys = messages.read_bytes_list(request, messages.PEER_ENCRYPTION_KEYS, count=len(peers), size=size)
        mask_keys = messages.read_bytes_list(request, messages.PEER_MASK_KEYS, count=len(peers), size=size)
        if not set(peers) <= set(s.neighbours):
            strangers = sorted(set(peers) - set(s.neighbours))
            raise ProtocolAbort(f"peers {strangers} are not this client's neighbours")
        if len(peers) + 1 < s.threshold:
            raise ProtocolAbort(
                f"only {len(peers)} peers are live, {s.threshold - 1} are needed to share "
                f"secrets with threshold {s.threshold}"
            )
        points = [*peers, s.index]
        seed_shares = shamir.split(int.from_bytes(s.seed, "big"), threshold=s.threshold, points=points)
        key_shares = shamir.split(int.from_bytes(s.mask_private, "big"), threshold=s.threshold, points=points)
        try:
            channel = masking.encryption_keys(
                s.encryption_private,
                dict(zip(peers, enc_keys, strict=True)),
                server_round=s.server_round,
                me=s.index,
            )
        except crypto.CryptoError as error:
            raise MalformedMessage(f"a peer's encryption key: {error}") from error
        ciphertexts = [
            crypto.encrypt(
                channel[peer],
                masking.pack_shares(seed_shares[peer], key_shares[peer]),
                associated_data=masking.share_associated_data(s.server_round, s.index, peer),
            )
            for peer in peers
        ]
        s.peers, s.peer_mask_keys = list(peers), list(mask_keys)
        s.channel_keys = [channel[peer] for peer in peers]
        s.own_seed_share = shamir.to_bytes(seed_shares[s.index])
        s.own_key_share = shamir.to_bytes(key_shares[s.index])
        s.shares_digest, s.sent_ciphertexts = _digest(request), list(ciphertexts)
        s.stage = SHARES_SENT
        return self._reply({messages.DESTINATIONS: list(peers), messages.CIPHERTEXTS: ciphertexts})

    # ---------------------------------------------------------------- stage 3
    def receive_shares(self, request: ConfigRecord) -> None:
        """Decrypt the shares routed from the peers that completed stage 2."""
        self._expect(request, SHARES_SENT, "the masked-input request")
        s = self.state
        sources = messages.read_indices(request, messages.SOURCES, high=s.num_clients)
        blobs = messages.read_bytes_list(
            request, messages.CIPHERTEXTS, count=len(sources), size=masking.CIPHERTEXT_BYTES
        )
        if not set(sources) <= set(s.peers):
            strangers = sorted(set(sources) - set(s.peers))
            raise ProtocolAbort(f"shares from {strangers}, which were not peers in stage 2")
        if len(sources) + 1 < s.threshold:
            raise ProtocolAbort(f"only {len(sources)} peers completed stage 2, {s.threshold - 1} are needed")
        seed_shares, key_shares = [], []
        for source, blob in zip(sources, blobs, strict=True):
            key = s.channel_keys[s.peers.index(source)]
            try:
                plaintext = crypto.decrypt(
                    key, blob, associated_data=masking.share_associated_data(s.server_round, source, s.index)
                )
                seed_share, key_share = masking.unpack_shares(plaintext)
            except (crypto.CryptoError, ValueError) as error:
                raise MalformedMessage(f"the share from peer {source} is unreadable: {error}") from error
            seed_shares.append(shamir.to_bytes(seed_share))
            key_shares.append(shamir.to_bytes(key_share))
        s.sources, s.seed_shares, s.key_shares = list(sources), seed_shares, key_shares
        s.stage = READY_TO_MASK

    def mask(self, update: npt.NDArray[np.float64], *, num_examples: int) -> RingVector:
        """The weighted, quantized update plus all masks, in the wire dtype (uint32 or uint64).

        Each value is clipped to [-clipping_range, clipping_range], then
        scaled by w / max_weight with w = min(num_examples, max_weight), and
        quantized; w travels as the last coordinate. The server can only
        recover sum_u w_u clip(x_u) and sum_u w_u, and divides the two.
        """
        s = self.state
        if s.stage != READY_TO_MASK:
            raise ProtocolAbort(
                f"masking requested at stage {s.stage}; a client masks once per round, after stage 2 "
                "(a second masked input would reveal the difference of two updates)"
            )
        if (s.last_round, s.last_commitment) != (s.server_round, masking.seed_commitment(s.seed)):
            raise ProtocolAbort(
                f"round {s.server_round} is not this client's only setup of it (the last setup kept "
                f"is of round {s.last_round}, with other keys); masking under a second setup of one "
                "round would reveal the difference of two inputs"
            )
        flat = np.asarray(update, dtype=np.float64).ravel()
        if flat.size != s.vector_length - 1:
            raise ProtocolAbort(f"the update has {flat.size} values, the round expects {s.vector_length - 1}")
        if not np.all(np.isfinite(flat)):
            raise ProtocolAbort("the update contains NaN or Inf; it cannot be quantized")
        if num_examples < 0:
            raise ProtocolAbort(f"num_examples must be >= 0, got {num_examples}")
        weight = min(int(num_examples), s.max_weight)
        clipped = np.clip(flat, -s.clipping_range, s.clipping_range)
        levels = fixed_point.quantize(
            clipped * (weight / s.max_weight), clipping_range=s.clipping_range, bits=s.quantization_bits
        )
        vector: npt.NDArray[np.uint64] = np.concatenate([levels, np.array([weight], dtype=np.uint64)])
        mask_keys = {peer: s.peer_mask_keys[s.peers.index(peer)] for peer in s.sources}
        try:
            pairwise = masking.pairwise_seeds(s.mask_private, mask_keys, server_round=s.server_round, me=s.index)
        except crypto.CryptoError as error:
            raise MalformedMessage(f"a peer's mask key: {error}") from error
        masked = masking.mask_input(vector, me=s.index, self_seed=s.seed, pairwise_seeds=pairwise, bits=s.modulus_bits)
        s.stage = MASKED
        return masked.astype(ring.wire_dtype(s.modulus_bits))

    # ---------------------------------------------------------------- stage 4
    def unmask(self, request: ConfigRecord) -> ConfigRecord:
        """Reveal seed shares of surviving peers and key shares of dropped ones, once."""
        self._expect(request, MASKED, "the unmask request")
        s = self.state
        survivors = messages.read_indices(request, messages.SURVIVORS, high=s.num_clients)
        dropped = messages.read_indices(request, messages.DROPPED, high=s.num_clients)
        known = set(s.sources) | {s.index}
        if set(survivors) & set(dropped):
            raise ProtocolAbort(
                f"clients {sorted(set(survivors) & set(dropped))} are listed as both surviving and "
                "dropped; revealing both their shares would unmask their input"
            )
        if s.index not in survivors:
            raise ProtocolAbort("this client sent its masked input but is not listed among the survivors")
        if not set(survivors) | set(dropped) <= known:
            raise ProtocolAbort(f"no shares are held for clients {sorted((set(survivors) | set(dropped)) - known)}")
        if len(survivors) < s.threshold:
            raise ProtocolAbort(
                f"only {len(survivors)} clients of this neighbourhood survive, fewer than the "
                f"threshold {s.threshold}; unmasking so few inputs could expose one"
            )
        seed_owners, seed_values, key_owners, key_values = [], [], [], []
        for peer in sorted(survivors):
            seed_owners.append(peer)
            seed_values.append(s.own_seed_share if peer == s.index else s.seed_shares[s.sources.index(peer)])
        for peer in sorted(dropped):
            key_owners.append(peer)
            key_values.append(s.key_shares[s.sources.index(peer)])
        reply = self._reply(
            {
                messages.SEED_SHARE_OWNERS: seed_owners,
                messages.SEED_SHARES: seed_values,
                messages.KEY_SHARE_OWNERS: key_owners,
                messages.KEY_SHARES: key_values,
            }
        )
        # the round is over for this client: keep only what refuses a second request,
        # and the keys it may have prepared for the next round
        self.state = ClientState(
            stage=UNMASKED,
            server_round=s.server_round,
            index=s.index,
            prepared_round=s.prepared_round,
            prepared_encryption_private=s.prepared_encryption_private,
            prepared_mask_private=s.prepared_mask_private,
            prepared_seed=s.prepared_seed,
            last_round=s.last_round,
            last_commitment=s.last_commitment,
        )
        return reply


def _digest(record: ConfigRecord) -> bytes:
    """A fingerprint of a request's fields and values, to recognise a retransmission."""
    canonical = repr(sorted((name, value) for name, value in record.items()))
    return hashlib.sha256(canonical.encode()).digest()


def _check_neighbours(neighbours: list[int], *, index: int, graph_seed: bytes, num_clients: int, size: int) -> None:
    """Refuse neighbours other than the committed graph seed's (the server may not pick them)."""
    try:
        expected = graph.neighbours(index, graph_seed=graph_seed, num_clients=num_clients, neighbourhood_size=size)
    except ValueError as error:
        raise MalformedMessage(f"the setup's graph cannot be rebuilt: {error}") from error
    if sorted(neighbours) != expected:
        raise ProtocolAbort(
            f"the server named neighbours {sorted(neighbours)}, but the graph seed it committed to "
            f"gives {expected} for index {index}"
        )


def _public_keys(encryption_private: bytes, mask_private: bytes, seed: bytes) -> dict[str, bytes]:
    """The stage-1 advertisement of a key set."""
    return {
        messages.ENCRYPTION_KEY: crypto.public_key(encryption_private),
        messages.MASK_KEY: crypto.public_key(mask_private),
        messages.SEED_COMMITMENT: masking.seed_commitment(seed),
    }
