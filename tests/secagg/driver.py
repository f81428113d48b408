"""Runs the secure-aggregation state machines against each other in memory.

Tests say which clients go silent at which stage and may rewrite any reply
before the server reads it (``tamper``), as a broken or malicious client would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from aureon import keys
from aureon.secagg import SecAggClient, SecAggServer, SecAggSettings, SecureSum, messages

STAGES = ("keys", "shares", "masked", "unmask")
Tamper = Callable[[str, int, RecordDict], RecordDict | None]


def settings(**overrides: object) -> SecAggSettings:
    values: dict[str, object] = dict(
        num_shares=0, threshold=0, modulus_bits=32, quantization_bits=20, clipping_range=2.0, max_weight=1000
    )
    values.update(overrides)
    return SecAggSettings(**values)  # type: ignore[arg-type]


@dataclass
class Run:
    server: SecAggServer
    clients: dict[int, SecAggClient]
    masked: dict[int, np.ndarray] = field(default_factory=dict)  # what the server received in stage 3


def _answer(
    stage: str,
    requests: Mapping[int, ConfigRecord],
    reply: Callable[[int, ConfigRecord], RecordDict],
    silent: set[int],
    tamper: Tamper | None,
) -> dict[int, RecordDict]:
    out = {}
    for node, request in requests.items():
        if node in silent:
            continue
        content = reply(node, request)
        if tamper is not None:
            content = tamper(stage, node, content)
        if content is not None:
            out[node] = content
    return out


def run_protocol(
    updates: Mapping[int, np.ndarray],
    weights: Mapping[int, int],
    *,
    config: SecAggSettings | None = None,
    silent_from: Mapping[int, str] | None = None,
    tamper: Tamper | None = None,
    server_round: int = 1,
    clients: Mapping[int, SecAggClient] | None = None,
) -> tuple[SecureSum, Run]:
    """One protocol run; ``silent_from[node] = stage`` makes ``node`` stop answering at that stage.

    ``clients`` carries clients over from an earlier run (fresh ones otherwise).
    """
    silent_from = dict(silent_from or {})
    nodes = sorted(updates)
    length = len(next(iter(updates.values()))) + 1
    server = SecAggServer(
        settings=config or settings(),
        node_ids=nodes,
        server_round=server_round,
        vector_length=length,
    )
    given = dict(clients or {})
    run = Run(server=server, clients={n: given.get(n) or SecAggClient() for n in nodes})

    def silent(stage: str) -> set[int]:
        return {n for n, s in silent_from.items() if STAGES.index(s) <= STAGES.index(stage)}

    def protocol_reply(method: str) -> Callable[[int, ConfigRecord], RecordDict]:
        return lambda node, request: RecordDict({keys.SECAGG: getattr(run.clients[node], method)(request)})

    def masked_reply(node: int, request: ConfigRecord) -> RecordDict:
        client = run.clients[node]
        client.receive_shares(request)
        masked = client.mask(updates[node], num_examples=weights[node])
        run.masked[node] = masked
        return RecordDict(
            {
                keys.SECAGG: ConfigRecord({messages.ROUND: server_round, messages.INDEX: client.state.index}),
                keys.SECAGG_MASKED: ArrayRecord({messages.MASKED: Array(masked)}),
            }
        )

    requests = server.setup_requests()
    requests = server.receive_keys(_answer("keys", requests, protocol_reply("setup"), silent("keys"), tamper))
    requests = server.receive_shares(
        _answer("shares", requests, protocol_reply("share_keys"), silent("shares"), tamper)
    )
    requests = server.receive_masked(_answer("masked", requests, masked_reply, silent("masked"), tamper))
    result = server.receive_unmask(
        _answer("unmask", requests, protocol_reply("unmask"), silent("unmask"), tamper)
    )
    return result, run


def plain_weighted_sum(
    updates: Mapping[int, np.ndarray], weights: Mapping[int, int], nodes: list[int], config: SecAggSettings
) -> np.ndarray:
    """sum_u (w_u / max_weight) * clip(x_u): what the secure sum must approximate."""
    total = np.zeros(len(next(iter(updates.values()))))
    for node in nodes:
        weight = min(weights[node], config.max_weight)
        clipped = np.clip(updates[node], -config.clipping_range, config.clipping_range)
        total += weight / config.max_weight * clipped
    return total
