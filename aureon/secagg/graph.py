"""The SecAgg+ communication graph: who shares secrets with whom.

Bell et al. (2020) replace SecAgg's complete graph by a sparse random regular
graph, so each client does O(k) rather than O(n) key agreements and mask
expansions. Here the protocol indices 1..n are placed on a ring in an order
drawn from a 32-byte graph seed, and each is joined to the (k - 1) / 2
nearest positions on either side: a k-regular Harary graph on a random
ordering, with k = ``neighbourhood_size`` counting the client itself. When k
covers everyone, this is plain SecAgg.

The graph seed and the assignment of node ids to indices come from the OS
CSPRNG, fresh for every protocol run, never from the run seed: a graph
anyone can compute ahead would let a coalition arrange to surround a victim.
The server commits to the seed by sending it to every client at setup, so
each client rebuilds the same graph and checks the neighbours it was given.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Final

GRAPH_SEED_BYTES: Final = 32
_DOMAIN: Final = b"aureon-secagg/v1/graph/"


def draw_graph_seed() -> bytes:
    """Fresh entropy for one protocol run's graph (never derived from a known seed)."""
    return secrets.token_bytes(GRAPH_SEED_BYTES)


def assign_indices(node_ids: Sequence[int]) -> dict[int, int]:
    """A uniformly random bijection from node ids to protocol indices 1..n (Shamir x-coordinates)."""
    ordered = sorted(set(node_ids))
    if len(ordered) != len(node_ids):
        raise ValueError("node ids must be distinct")
    shuffled = secrets.SystemRandom().sample(ordered, len(ordered))
    return {node: rank + 1 for rank, node in enumerate(shuffled)}


def ring_order(graph_seed: bytes, num_clients: int) -> list[int]:
    """Indices 1..n in the ring order fixed by ``graph_seed`` (a keyed hash sorts them)."""
    if len(graph_seed) != GRAPH_SEED_BYTES:
        raise ValueError(f"a graph seed is {GRAPH_SEED_BYTES} bytes, got {len(graph_seed)}")
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients}")

    def rank(index: int) -> bytes:
        return hashlib.sha256(_DOMAIN + graph_seed + index.to_bytes(8, "big")).digest()

    return sorted(range(1, num_clients + 1), key=rank)


def _sparse(num_clients: int, neighbourhood_size: int) -> bool:
    """True when the graph is a proper subset of the complete graph (SecAgg+ rather than SecAgg)."""
    if neighbourhood_size >= num_clients:
        return False
    if neighbourhood_size < 1 or neighbourhood_size % 2 == 0:
        raise ValueError(f"a neighbourhood smaller than all clients must have an odd size, got {neighbourhood_size}")
    return True


def _around(order: list[int], position: int, neighbourhood_size: int) -> list[int]:
    """The (k - 1) / 2 ring positions on either side of ``position``, as sorted indices."""
    half = (neighbourhood_size - 1) // 2
    size = len(order)
    return sorted(order[(position + step) % size] for offset in range(1, half + 1) for step in (offset, -offset))


def neighbourhoods(graph_seed: bytes, *, num_clients: int, neighbourhood_size: int) -> dict[int, list[int]]:
    """Every index's neighbours (itself excluded, increasing order) in the graph of ``graph_seed``."""
    everyone = range(1, num_clients + 1)
    if not _sparse(num_clients, neighbourhood_size):
        return {index: [other for other in everyone if other != index] for index in everyone}
    order = ring_order(graph_seed, num_clients)
    return {index: _around(order, position, neighbourhood_size) for position, index in enumerate(order)}


def neighbours(index: int, *, graph_seed: bytes, num_clients: int, neighbourhood_size: int) -> list[int]:
    """The indices ``index`` exchanges masks with in the graph of ``graph_seed``, in increasing order.

    What a client computes to check the neighbour list the server sent it.
    """
    if not 1 <= index <= num_clients:
        raise ValueError(f"index must be in [1, {num_clients}], got {index}")
    if not _sparse(num_clients, neighbourhood_size):
        return [other for other in range(1, num_clients + 1) if other != index]
    order = ring_order(graph_seed, num_clients)
    return _around(order, order.index(index), neighbourhood_size)
