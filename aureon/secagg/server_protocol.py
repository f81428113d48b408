"""The server's side of SecAgg/SecAgg+ as a state machine over protocol messages.

The server routes messages and, at the end, removes the masks it is allowed
to remove: the self masks of clients whose inputs it holds and the pairwise
masks of clients that dropped. It never holds a client's unmasked input; what
it receives from one client is uniform over Z_{2^k} (tested). Stage order:

0. setup: parameters, each client's neighbours and the graph seed they come from
1. advertise keys: two X25519 public keys and a commitment to the seed b_u
2. share keys: encrypted Shamir shares of b_u and of the mask key s_u, routed
3. masked input: y_u = weighted, quantized update + PRG(b_u) + pairwise masks
4. unmasking: survivors reveal b shares of survivors, s shares of the dropped

Every reply is checked; a malformed one is logged, recorded in
``rejections`` and its sender treated as dropped. If fewer than
``threshold`` clients remain at any stage, or a secret cannot be rebuilt
from shares that match its public commitment, SecureAggregationError ends
the round: no sum is better than a wrong one. So does an unmasked sum that
no set of honest inputs could produce (ImplausibleAggregate): a mean outside
the clipping range, or a total weight outside [1, contributors x max_weight].

The protocol indices and the neighbour graph come from fresh OS entropy per
run (aureon.secagg.graph), never from the run seed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
from flwr.app import ConfigRecord, ConfigRecordValues, RecordDict

from aureon import keys
from aureon.exceptions import SecureAggregationError
from aureon.secagg import crypto, fixed_point, graph, masking, messages, prg, ring, shamir
from aureon.secagg.errors import ImplausibleAggregate, MalformedMessage
from aureon.secagg.params import RoundParams, SecAggSettings
from aureon.secagg.ring import RingVector

LOG: Final = logging.getLogger(__name__)
STAGES: Final = ("setup", "advertise-keys", "share-keys", "masked-input", "unmask")
MAX_RECONSTRUCTION_TRIES: Final = 64
FLOAT_SLACK: Final = 1e-9  # relative: float64 rounding in dequantization, not a protocol tolerance

_Parsed = TypeVar("_Parsed")


@dataclass(frozen=True)
class Rejection:
    """A reply the server refused, and why."""

    node_id: int
    stage: str
    reason: str


@dataclass(frozen=True)
class SecureSum:
    """What the server learns: the sum of weighted inputs and the sum of weights.

    ``weighted_sum`` is sum_u (w_u / max_weight) * clip(x_u) over ``contributors``,
    within ``sum_error_bound`` per coordinate (quantization); each x_u was
    clipped to [-clipping_range, clipping_range] and each w_u to [0, max_weight].
    """

    weighted_sum: npt.NDArray[np.float64]
    total_weight: int
    max_weight: int
    contributors: list[int]
    sum_error_bound: float
    clipping_range: float

    def mean(self) -> npt.NDArray[np.float64]:
        """The weighted mean sum_u w_u x_u / sum_u w_u of the contributors' inputs."""
        if self.total_weight <= 0:
            raise SecureAggregationError("the securely summed weight is 0: no contributor reported training examples")
        return self.weighted_sum * (self.max_weight / self.total_weight)

    def mean_error_bound(self) -> float:
        """Per-coordinate bound on |mean() - weighted mean of the clipped inputs|."""
        return self.sum_error_bound * self.max_weight / max(self.total_weight, 1)

    def implausibility(self) -> str | None:
        """Why no honest inputs could have produced this sum, or None if some could.

        Honest weights lie in [0, max_weight] and honest values in
        [-clipping_range, clipping_range], so the total weight is at most
        contributors x max_weight and every coordinate of the mean lies within
        the clipping range, give or take the quantization bound. A client that
        alters its masked input lands outside both with overwhelming
        probability unless its change is small enough to stay inside them.
        """
        top = len(self.contributors) * self.max_weight
        if not 1 <= self.total_weight <= top:
            return (
                f"the summed weight is {self.total_weight}, outside [1, {top}] "
                f"({len(self.contributors)} contributors x max_weight {self.max_weight})"
            )
        if self.weighted_sum.size == 0:
            return None
        limit = (self.clipping_range + self.mean_error_bound()) * (1 + FLOAT_SLACK)
        worst = float(np.max(np.abs(self.mean())))
        if not worst <= limit:
            return (
                f"a coordinate of the mean is {worst:.6g}, outside the clipping range "
                f"[-{self.clipping_range:g}, {self.clipping_range:g}] (+ quantization error "
                f"{self.mean_error_bound():.3g})"
            )
        return None


class SecAggServer:
    """One round of the protocol among ``node_ids``; call the stage methods in order."""

    def __init__(
        self,
        *,
        settings: SecAggSettings,
        node_ids: Sequence[int],
        server_round: int,
        vector_length: int,
        graph_seed: bytes | None = None,
    ) -> None:
        """``graph_seed`` is drawn fresh when None; tests pass one to rebuild a graph."""
        if vector_length < 2:
            raise ValueError(f"vector_length must be >= 2 (values + weight), got {vector_length}")
        self.params: RoundParams = settings.for_round(len(node_ids))
        self.server_round = server_round
        self.vector_length = vector_length
        if graph_seed is not None and len(graph_seed) != graph.GRAPH_SEED_BYTES:
            raise ValueError(f"graph_seed must be {graph.GRAPH_SEED_BYTES} bytes, got {len(graph_seed)}")
        self.graph_seed = graph.draw_graph_seed() if graph_seed is None else graph_seed
        self.index_of = graph.assign_indices(node_ids)
        self.node_of = {index: node for node, index in self.index_of.items()}
        self.neighbours = {
            index: set(peers)
            for index, peers in graph.neighbourhoods(
                self.graph_seed,
                num_clients=self.params.num_clients,
                neighbourhood_size=self.params.neighbourhood_size,
            ).items()
        }
        self.rejections: list[Rejection] = []
        self._stage = 0
        self._asked: set[int] = set()
        self._public: dict[int, tuple[bytes, bytes, bytes]] = {}
        self._shared: set[int] = set()
        self._ciphertexts: dict[tuple[int, int], bytes] = {}
        self._masked: dict[int, RingVector] = {}
        self._unmask_asked: dict[int, tuple[list[int], list[int]]] = {}

    # ---------------------------------------------------------------- helpers
    @property
    def threshold(self) -> int:
        return self.params.threshold

    def _advance(self, stage: int) -> None:
        if self._stage != stage:
            raise SecureAggregationError(
                f"stage {STAGES[stage]!r} called out of order (the server is at stage {self._stage})"
            )
        self._stage += 1

    def _reject(self, node_id: int, stage: int, reason: str) -> None:
        LOG.warning("secure aggregation, %s: rejected the reply of node %d: %s", STAGES[stage], node_id, reason)
        self.rejections.append(Rejection(node_id=node_id, stage=STAGES[stage], reason=reason))

    def _parse(
        self,
        replies: Mapping[int, RecordDict],
        stage: int,
        read: Callable[[int, RecordDict], _Parsed],
    ) -> dict[int, _Parsed]:
        """Apply ``read`` to each expected reply; reject unexpected or malformed ones."""
        parsed: dict[int, _Parsed] = {}
        for node_id, content in replies.items():
            index = self.index_of.get(node_id)
            if index is None or index not in self._asked:
                self._reject(node_id, stage, "the server sent this node no request in this stage")
                continue
            try:
                record = messages.protocol_record(content)
                got_round = messages.read_int(record, messages.ROUND, low=0, high=1 << 62)
                got_index = messages.read_int(record, messages.INDEX, low=1, high=self.params.num_clients)
                if (got_round, got_index) != (self.server_round, index):
                    stale = " (a stale round)" if got_round < self.server_round else ""
                    raise MalformedMessage(
                        f"reply is for round {got_round}{stale}, index {got_index}; "
                        f"expected round {self.server_round}, index {index}"
                    )
                parsed[index] = read(index, content)
            except (MalformedMessage, ValueError, TypeError, KeyError) as error:
                self._reject(node_id, stage, str(error))
        return parsed

    def _require_quorum(self, alive: set[int], stage: int) -> None:
        if len(alive) < self.threshold:
            raise SecureAggregationError(
                f"secure aggregation aborted at stage {STAGES[stage]!r}: {len(alive)} of "
                f"{self.params.num_clients} clients remain, below the threshold {self.threshold}; "
                "no sum is produced rather than a wrong or revealing one"
            )

    def _prune(self, alive: set[int], stage: int) -> set[int]:
        """Drop clients with fewer than threshold - 1 live neighbours (they could not be unmasked)."""
        alive = set(alive)
        while True:
            isolated = {u for u in alive if len(self.neighbours[u] & alive) + 1 < self.threshold}
            if not isolated:
                break
            for u in sorted(isolated):
                LOG.warning(
                    "secure aggregation, %s: node %d has too few live neighbours to be unmasked; "
                    "it sits out this round",
                    STAGES[stage],
                    self.node_of[u],
                )
            alive -= isolated
        self._require_quorum(alive, stage)
        return alive

    def _request(self, index: int, values: Mapping[str, ConfigRecordValues]) -> ConfigRecord:
        record = ConfigRecord({messages.ROUND: self.server_round, messages.INDEX: index})
        for name, value in values.items():
            record[name] = value
        return record

    # ---------------------------------------------------------------- stage 0
    def setup_requests(self) -> dict[int, ConfigRecord]:
        """Stage 0: parameters and neighbours for every participant (node id -> request)."""
        self._advance(0)
        p = self.params
        self._asked = set(self.node_of)
        return {
            self.node_of[index]: self._request(
                index,
                {
                    messages.NUM_CLIENTS: p.num_clients,
                    messages.NEIGHBOURS: sorted(self.neighbours[index]),
                    messages.NEIGHBOURHOOD_SIZE: p.neighbourhood_size,
                    messages.THRESHOLD: p.threshold,
                    messages.MODULUS_BITS: p.modulus_bits,
                    messages.QUANTIZATION_BITS: p.quantization_bits,
                    messages.CLIPPING_RANGE: p.clipping_range,
                    messages.MAX_WEIGHT: p.max_weight,
                    messages.VECTOR_LENGTH: self.vector_length,
                    messages.GRAPH_SEED: self.graph_seed,
                },
            )
            for index in sorted(self.node_of)
        }

    # ---------------------------------------------------------------- stage 1
    def receive_keys(self, replies: Mapping[int, RecordDict]) -> dict[int, ConfigRecord]:
        """Stage 1: collect public keys; returns the stage-2 requests (peers' public keys)."""
        self._advance(1)

        def read(_index: int, content: RecordDict) -> tuple[bytes, bytes, bytes]:
            record = messages.protocol_record(content)
            return (
                messages.read_bytes(record, messages.ENCRYPTION_KEY, size=crypto.KEY_BYTES),
                messages.read_bytes(record, messages.MASK_KEY, size=crypto.KEY_BYTES),
                messages.read_bytes(record, messages.SEED_COMMITMENT, size=32),
            )

        parsed = self._parse(replies, 1, read)
        alive = self._prune(set(parsed), 1)
        self._public = {u: parsed[u] for u in alive}
        self._asked = alive
        requests = {}
        for u in sorted(alive):
            peers = sorted(self.neighbours[u] & alive)
            requests[self.node_of[u]] = self._request(
                u,
                {
                    messages.PEERS: peers,
                    messages.PEER_ENCRYPTION_KEYS: [self._public[v][0] for v in peers],
                    messages.PEER_MASK_KEYS: [self._public[v][1] for v in peers],
                },
            )
        return requests

    # ---------------------------------------------------------------- stage 2
    def receive_shares(self, replies: Mapping[int, RecordDict]) -> dict[int, ConfigRecord]:
        """Stage 2: collect encrypted shares; returns stage-3 requests (the shares routed)."""
        self._advance(2)
        asked = set(self._asked)

        def read(index: int, content: RecordDict) -> dict[int, bytes]:
            record = messages.protocol_record(content)
            destinations = messages.read_indices(record, messages.DESTINATIONS, high=self.params.num_clients)
            expected = sorted(self.neighbours[index] & asked)
            if sorted(destinations) != expected:
                raise MalformedMessage(
                    f"shares must go to exactly the live peers {expected}, got {sorted(destinations)}"
                )
            blobs = messages.read_bytes_list(
                record, messages.CIPHERTEXTS, count=len(destinations), size=masking.CIPHERTEXT_BYTES
            )
            return dict(zip(destinations, blobs, strict=True))

        parsed = self._parse(replies, 2, read)
        alive = self._prune(set(parsed), 2)
        self._shared = alive
        self._ciphertexts = {(u, v): blob for u in alive for v, blob in parsed[u].items()}
        self._asked = alive
        requests = {}
        for v in sorted(alive):
            sources = sorted(self.neighbours[v] & alive)
            requests[self.node_of[v]] = self._request(
                v,
                {
                    messages.SOURCES: sources,
                    messages.CIPHERTEXTS: [self._ciphertexts[(u, v)] for u in sources],
                },
            )
        return requests

    # ---------------------------------------------------------------- stage 3
    def receive_masked(self, replies: Mapping[int, RecordDict]) -> dict[int, ConfigRecord]:
        """Stage 3: collect masked inputs; returns the stage-4 (unmask) requests."""
        self._advance(3)
        bits = self.params.modulus_bits
        dtype = ring.wire_dtype(bits)

        def read(_index: int, content: RecordDict) -> RingVector:
            record = content.array_records.get(keys.SECAGG_MASKED)
            if record is None or list(record.keys()) != [messages.MASKED]:
                raise MalformedMessage(
                    f"expected an ArrayRecord {keys.SECAGG_MASKED!r} holding one array {messages.MASKED!r}"
                )
            array = record[messages.MASKED]
            if array.dtype != dtype.name or tuple(array.shape) != (self.vector_length,):
                raise MalformedMessage(
                    f"the masked input must be {dtype.name}[{self.vector_length}], got {array.dtype}{list(array.shape)}"
                )
            values = np.asarray(array.numpy())
            if values.dtype != dtype or values.shape != (self.vector_length,):
                raise MalformedMessage("the masked input's bytes do not match its declared dtype and shape")
            if not ring.in_range(values, bits):
                raise MalformedMessage(f"the masked input has values >= 2**{bits}")
            return values

        parsed = self._parse(replies, 3, read)
        survivors = set(parsed)
        self._require_quorum(survivors, 3)
        self._masked = {u: parsed[u] for u in survivors}
        dropped = self._shared - survivors
        self._unmask_asked = {
            u: (sorted((self.neighbours[u] & survivors) | {u}), sorted(self.neighbours[u] & dropped))
            for u in sorted(survivors)
        }
        self._asked = survivors
        return {
            self.node_of[u]: self._request(u, {messages.SURVIVORS: alive, messages.DROPPED: gone})
            for u, (alive, gone) in self._unmask_asked.items()
        }

    # ---------------------------------------------------------------- stage 4
    def receive_unmask(self, replies: Mapping[int, RecordDict]) -> SecureSum:
        """Stage 4: rebuild the secrets from the shares and return the unmasked sum."""
        self._advance(4)
        top = self.params.num_clients

        def read(index: int, content: RecordDict) -> tuple[dict[int, int], dict[int, int]]:
            record = messages.protocol_record(content)
            alive, gone = self._unmask_asked[index]
            seed_owners = messages.read_indices(record, messages.SEED_SHARE_OWNERS, high=top)
            key_owners = messages.read_indices(record, messages.KEY_SHARE_OWNERS, high=top)
            if seed_owners != alive or key_owners != gone:
                raise MalformedMessage(
                    f"shares must be for survivors {alive} and dropped {gone}, got {seed_owners} and {key_owners}"
                )
            size = shamir.SHARE_BYTES
            seed_shares = messages.read_bytes_list(record, messages.SEED_SHARES, count=len(alive), size=size)
            key_shares = messages.read_bytes_list(record, messages.KEY_SHARES, count=len(gone), size=size)
            return (
                {u: shamir.from_bytes(b) for u, b in zip(alive, seed_shares, strict=True)},
                {v: shamir.from_bytes(b) for v, b in zip(gone, key_shares, strict=True)},
            )

        parsed = self._parse(replies, 4, read)
        seed_points: dict[int, dict[int, int]] = {u: {} for u in self._masked}
        key_points: dict[int, dict[int, int]] = {}
        for responder, (seed_share_of, key_share_of) in parsed.items():
            for owner, share in seed_share_of.items():
                seed_points[owner][responder] = share
            for owner, share in key_share_of.items():
                key_points.setdefault(owner, {})[responder] = share

        total = np.zeros(self.vector_length, dtype=ring.wire_dtype(self.params.modulus_bits))
        bits = self.params.modulus_bits
        for u in sorted(self._masked):
            total = ring.add(total, self._masked[u], bits)
            commitment = self._public[u][2]
            seed = self._rebuild(u, seed_points[u], "self-mask seed", _commits_to(commitment))
            total = ring.sub(total, prg.expand(seed, length=self.vector_length, bits=bits), bits)
        for v in sorted(self._shared - set(self._masked)):
            partners = sorted(self.neighbours[v] & set(self._masked))
            if not partners:
                continue
            public = self._public[v][1]
            mask_key = self._rebuild(v, key_points.get(v, {}), "mask key", _has_public_key(public))
            seeds = masking.pairwise_seeds(
                mask_key, {u: self._public[u][1] for u in partners}, server_round=self.server_round, me=v
            )
            for u in partners:
                total = masking.add_pairwise(total, seeds[u], -masking.sign(u, v), bits=bits)

        count = len(self._masked)
        weighted_sum = fixed_point.dequantize_sum(
            total[:-1],
            count=count,
            clipping_range=self.params.clipping_range,
            bits=self.params.quantization_bits,
        )
        result = SecureSum(
            weighted_sum=weighted_sum,
            total_weight=int(total[-1]),
            max_weight=self.params.max_weight,
            contributors=sorted(self.node_of[u] for u in self._masked),
            sum_error_bound=self.params.sum_error_bound(count),
            clipping_range=self.params.clipping_range,
        )
        reason = result.implausibility()
        if reason is not None:
            raise ImplausibleAggregate(
                f"secure aggregation aborted at stage 'unmask': the unmasked sum is not one honest "
                f"inputs can produce: {reason}; a contributor altered its masked input"
            )
        return result

    def _rebuild(self, owner: int, points: dict[int, int], what: str, verify: Callable[[bytes], bool]) -> bytes:
        """A 32-byte secret from ``threshold`` shares that passes ``verify`` (its public commitment).

        Tries subsets of the shares in a fixed order, so a few corrupted shares
        are outvoted when more than ``threshold`` arrived.
        """
        t = self.threshold
        if len(points) < t:
            raise SecureAggregationError(
                f"secure aggregation aborted at stage 'unmask': the {what} of node "
                f"{self.node_of[owner]} needs {t} shares, {len(points)} arrived"
            )
        for subset in itertools.islice(itertools.combinations(sorted(points), t), MAX_RECONSTRUCTION_TRIES):
            value = shamir.interpolate_at({x: points[x] for x in subset}, 0)
            if value < 1 << 256:
                candidate = value.to_bytes(32, "big")
                if verify(candidate):
                    return candidate
        raise SecureAggregationError(
            f"secure aggregation aborted at stage 'unmask': no {t} of the {len(points)} shares of "
            f"node {self.node_of[owner]}'s {what} match its public commitment (corrupted shares)"
        )


def _commits_to(commitment: bytes) -> Callable[[bytes], bool]:
    """Whether a rebuilt self-mask seed is the one ``commitment`` was advertised for."""

    def verify(seed: bytes) -> bool:
        return masking.seed_commitment(seed) == commitment

    return verify


def _has_public_key(public: bytes) -> Callable[[bytes], bool]:
    """Whether a rebuilt mask key is the private half of the advertised ``public`` key."""

    def verify(private_key: bytes) -> bool:
        return crypto.public_key(private_key) == public

    return verify
