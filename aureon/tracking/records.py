"""The per-round records written to results.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ClientRound:
    """One client's contribution to one round."""

    partition_id: int
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
        data["epsilon_per_client"] = {str(c.partition_id): c.epsilon for c in self.clients}
        data["bytes_up_total"] = self.bytes_up
        data["bytes_down_total"] = self.bytes_down
        data["num_failures"] = len(self.failures)
        data["num_rejected"] = len(self.rejected)
        data["num_capped"] = len(self.capped)
        return data
