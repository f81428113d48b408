"""The per-round records written to results.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ClientRound:
    """One client's contribution to one round, known by its node; ``partition_id`` is only a label.

    The label is what the client's optional ``aureon-client`` record named
    (AUREON's client names its partition), None for a client that names none.
    """

    partition_id: int | None
    node_id: int
    num_examples: int | None  # None when the client's weight was aggregated securely
    train_loss: float | None  # None when withheld: under DP-SGD it would be an unprotected release
    epsilon: float | None
    bytes_up: int
    bytes_down: int


@dataclass
class Failure:
    """A sampled client that did not contribute, and why."""

    node_id: int
    reason: str


@dataclass
class Rejection:
    """A reply the server received but refused to aggregate, the stage and why."""

    node_id: int
    stage: str
    reason: str


@dataclass
class CappedWeight:
    """A reply aggregated with less weight than it declared (aggregation.max_weight)."""

    node_id: int
    declared: float
    used: float


@dataclass
class RoundRecord:
    """Everything measured in one round."""

    round: int
    test_accuracy: float
    test_loss: float
    seconds: float
    clients: list[ClientRound] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    capped: list[CappedWeight] = field(default_factory=list)
    aggregation_error: str | None = None  # why the round kept the previous model
    # seconds per phase (aureon.tracking.phases); the round a resume starts after lacks its
    # "checkpoint", which the checkpoint holding the round cannot know; older checkpoints have none
    phases: dict[str, float] = field(default_factory=dict)
    # client-level DP (privacy=client_level): this round's release and the epsilon spent so far
    client_level: dict[str, Any] | None = None

    @property
    def epsilon_max(self) -> float | None:
        spent = [c.epsilon for c in self.clients if c.epsilon is not None]
        return max(spent) if spent else None

    @property
    def bytes_up(self) -> int:
        return sum(c.bytes_up for c in self.clients)

    @property
    def bytes_down(self) -> int:
        return sum(c.bytes_down for c in self.clients)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["epsilon_max"] = self.epsilon_max
        names = client_names(self.clients)
        data["epsilon_per_client"] = {name: c.epsilon for name, c in zip(names, self.clients, strict=True)}
        data["bytes_up_total"] = self.bytes_up
        data["bytes_down_total"] = self.bytes_down
        data["num_failures"] = len(self.failures)
        data["num_rejected"] = len(self.rejected)
        data["num_capped"] = len(self.capped)
        return data


def client_names(clients: list[ClientRound]) -> list[str]:
    """How results.json names each client: its partition label, else (or when two share one) ``node-<id>``."""
    labels = [c.partition_id for c in clients]
    return [
        str(c.partition_id) if c.partition_id is not None and labels.count(c.partition_id) == 1 else f"node-{c.node_id}"
        for c in clients
    ]


def aggregated_clients(record: RoundRecord) -> list[ClientRound]:
    """The clients whose replies went into the round's aggregate: none if it was aborted, never a rejected one."""
    if record.aggregation_error is not None:
        return []
    rejected = {r.node_id for r in record.rejected}
    return [c for c in record.clients if c.node_id not in rejected]


def privacy_statement(configured: dict[str, Any], rounds: list[RoundRecord]) -> dict[str, Any]:
    """The DP guarantee results.json may state: ``configured`` only if every aggregated client reported epsilon.

    A client that reported no epsilon (a plain Flower client, or DP off on its
    side) gave its data no DP-SGD protection, and the global model carries its
    update: the run then claims no guarantee, keeps the configured one under
    ``configured`` and names those clients by node (with their label and rounds).
    """
    if configured.get("kind", "none") == "none":
        return configured
    if "client_level" in configured:  # the client-level guarantee needs nothing from the clients
        sample_level = configured.get("sample_level")
        spent = next((r.client_level["epsilon"] for r in reversed(rounds) if r.client_level is not None), 0.0)
        return {
            **configured,
            "client_level": {**configured["client_level"], "epsilon_spent": spent},
            "sample_level": None if sample_level is None else privacy_statement(sample_level, rounds),
        }
    without: dict[int, dict[str, Any]] = {}
    for record in rounds:
        for client in aggregated_clients(record):
            if client.epsilon is None:
                entry = without.setdefault(
                    client.node_id, {"node_id": client.node_id, "partition_id": client.partition_id, "rounds": []}
                )
                entry["rounds"].append(record.round)
    if not without:
        return {**configured, "clients_without_guarantee": []}
    nodes = sorted(without)
    return {
        "kind": "none",
        "reason": (
            f"{len(nodes)} aggregated client(s) reported no epsilon (nodes {nodes}): their data reached the "
            "global model without DP-SGD, so no guarantee is stated for the run; clients that reported "
            "an epsilon keep theirs (rounds[].epsilon_per_client)"
        ),
        "configured": configured,
        "clients_without_guarantee": [without[node] for node in nodes],
    }
