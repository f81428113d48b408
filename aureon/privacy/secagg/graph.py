"""The SecAgg+ communication graph: who shares secrets with whom.

Bell et al. (2020) replace SecAgg's complete graph by a sparse random regular
graph, so each client does O(k) rather than O(n) key agreements and mask
expansions. Here clients are placed on a ring in a random order (the order is
the server's random assignment of protocol indices) and each is joined to the
(k - 1) / 2 nearest indices on either side: a k-regular Harary graph, i.e.
with k = ``neighbourhood_size``, counting the client itself. When k covers
everyone, this is plain SecAgg.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def assign_indices(node_ids: Sequence[int], *, seed: int) -> dict[int, int]:
    """A random bijection from node ids to protocol indices 1..n (Shamir x-coordinates)."""
    ordered = sorted(set(node_ids))
    if len(ordered) != len(node_ids):
        raise ValueError("node ids must be distinct")
    order = np.random.default_rng(seed).permutation(len(ordered))
    return {ordered[position]: rank + 1 for rank, position in enumerate(order)}


def neighbours(index: int, *, num_clients: int, neighbourhood_size: int) -> list[int]:
    """The indices ``index`` exchanges masks with, itself excluded, in increasing order."""
    if not 1 <= index <= num_clients:
        raise ValueError(f"index must be in [1, {num_clients}], got {index}")
    if neighbourhood_size >= num_clients:
        return [other for other in range(1, num_clients + 1) if other != index]
    if neighbourhood_size < 1 or neighbourhood_size % 2 == 0:
        raise ValueError(
            f"a neighbourhood smaller than all clients must have an odd size, got {neighbourhood_size}"
        )
    half = (neighbourhood_size - 1) // 2
    zero_based = index - 1
    found = {
        (zero_based + step) % num_clients + 1
        for offset in range(1, half + 1)
        for step in (offset, -offset)
    }
    return sorted(found)
