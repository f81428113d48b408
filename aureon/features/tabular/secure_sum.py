"""Summing real vectors of statistics under AUREON's SecAgg protocol (aureon.secagg).

Every client's vector is divided by a public per-coordinate scale (the
largest value an honest client can hold there), so it lies in [-1, 1]: the
protocol's clipping range. Each client has weight 1 (``max_weight`` 1), so
the protocol's plausibility check (the mean of the inputs lies within the
clipping range, the summed weight equals at most the contributors) holds for
sums of statistics exactly as it does for means of model updates. The
quantization error of a summed coordinate is at most
``scale * contributors * step / 2`` (``sum_error_bound``), step being
2 / (2**QUANTIZATION_BITS - 1).

``run_in_process`` drives the real client and server state machines (X25519,
Shamir shares, PRG masks) against each other in this process: what a
simulation's ``LocalFederation`` uses; ``GridFederation`` stages the same
requests as Message-API round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from aureon import keys
from aureon.secagg import SecAggClient, SecAggServer, SecAggSettings, SecureSum, fixed_point, messages

MODULUS_BITS: Final = 62
QUANTIZATION_BITS: Final = 48  # n x 2**48 < 2**62 for up to 16,383 clients
CLIPPING_RANGE: Final = 1.0  # vectors are divided by their public scale first
# relative allowance for float64 rounding on top of step / 2 (about 2**-4 of a level at 48 bits)
FLOAT_SLACK: Final = 0.25
STAGES: Final = ("keys", "shares", "masked", "unmask")

# a client's normalized vector for the round, computed once its shares arrived (stage 3)
VectorSource = Callable[[], np.ndarray]
Observer = Callable[[int, np.ndarray], None]


def settings(*, threshold: int) -> SecAggSettings:
    """Plain SecAgg among all clients (every client shares with every other); 0: strict majority."""
    return SecAggSettings(
        num_shares=0,
        threshold=threshold,
        modulus_bits=MODULUS_BITS,
        quantization_bits=QUANTIZATION_BITS,
        clipping_range=CLIPPING_RANGE,
        max_weight=1,
    )


def unit_error_bound(count: int) -> float:
    """Per-coordinate bound on the error of a sum of ``count`` normalized inputs."""
    bound = fixed_point.sum_error_bound(count=count, clipping_range=CLIPPING_RANGE, bits=QUANTIZATION_BITS)
    return bound * (1.0 + FLOAT_SLACK)


def count_error_bound(*, clients: int, max_rows: int) -> float:
    """The error bound of a summed count whose per-client scale is ``max_rows``: below 0.5, counts are exact."""
    return max_rows * unit_error_bound(clients)


@dataclass(frozen=True)
class Party:
    """One client of an in-process run: its protocol state machine and the vector it will mask."""

    client: SecAggClient
    vector: VectorSource


def run_in_process(
    parties: Sequence[Party],
    *,
    secagg: SecAggSettings,
    server_round: int,
    vector_length: int,
    drop: Mapping[int, str] | None = None,
    observe: Observer | None = None,
) -> SecureSum:
    """One protocol run among ``parties`` (node ids 1..n), the server holding only what clients send.

    ``drop[position] = stage`` makes that party stop answering from that stage on
    (a client going offline). ``observe(node, masked)`` sees each masked input
    the server receives.
    """
    nodes = list(range(1, len(parties) + 1))
    by_node = dict(zip(nodes, parties, strict=True))
    gone = {nodes[p]: STAGES.index(s) for p, s in (drop or {}).items()}
    server = SecAggServer(settings=secagg, node_ids=nodes, server_round=server_round, vector_length=vector_length + 1)

    def answer(stage: str, requests: Mapping[int, ConfigRecord], reply: Callable[[int, ConfigRecord], RecordDict]):
        return {n: reply(n, r) for n, r in requests.items() if gone.get(n, len(STAGES)) > STAGES.index(stage)}

    def protocol(method: str) -> Callable[[int, ConfigRecord], RecordDict]:
        return lambda node, request: RecordDict({keys.SECAGG: getattr(by_node[node].client, method)(request)})

    def masked(node: int, request: ConfigRecord) -> RecordDict:
        party = by_node[node]
        party.client.receive_shares(request)
        content = masked_content(party.client, party.vector())
        if observe is not None:
            observe(node, content.array_records[keys.SECAGG_MASKED][messages.MASKED].numpy())
        return content

    requests = server.setup_requests()
    requests = server.receive_keys(answer("keys", requests, protocol("setup")))
    requests = server.receive_shares(answer("shares", requests, protocol("share_keys")))
    requests = server.receive_masked(answer("masked", requests, masked))
    return server.receive_unmask(answer("unmask", requests, protocol("unmask")))


def masked_content(client: SecAggClient, vector: np.ndarray) -> RecordDict:
    """Stage 3's reply: ``vector`` (already in [-1, 1]) masked at weight 1."""
    masked = client.mask(vector, num_examples=1)
    state = client.state
    return RecordDict(
        {
            keys.SECAGG: ConfigRecord({messages.ROUND: state.server_round, messages.INDEX: state.index}),
            keys.SECAGG_MASKED: ArrayRecord({messages.MASKED: Array(masked)}),
        }
    )
