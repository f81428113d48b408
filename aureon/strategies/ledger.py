"""What the aggregation wrappers saw in a round that RoundRecorder cannot: rejections,
protocol traffic and aborted aggregations. run_server folds it into results.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flwr.app import Message

from aureon.tracking.records import CappedWeight, Failure, Rejection, RoundRecord
from aureon.tracking.wire import message_wire_bytes


@dataclass
class RoundEvents:
    """One round's events, ready to be merged into its RoundRecord."""

    rejected: list[Rejection] = field(default_factory=list)
    capped: list[CappedWeight] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    traffic: dict[int, list[int]] = field(default_factory=dict)  # node -> [up, down]
    error: str | None = None

    def apply(self, record: RoundRecord) -> RoundRecord:
        """``record`` with these events added; protocol bytes go to the clients that sent them."""
        for client in record.clients:
            up, down = self.traffic.get(client.node_id, (0, 0))
            client.bytes_up += up
            client.bytes_down += down
        record.failures.extend(self.failures)
        record.rejected.extend(self.rejected)
        record.capped.extend(self.capped)
        record.aggregation_error = self.error
        return record


class RoundLedger:
    """Per-round event log shared by the wrappers of one run; ``pop`` hands a round over."""

    def __init__(self) -> None:
        self._rounds: dict[int, RoundEvents] = {}
        self._messages: dict[int, list[tuple[int, Message, bool]]] = {}

    def _round(self, server_round: int) -> RoundEvents:
        return self._rounds.setdefault(server_round, RoundEvents())

    def reject(self, server_round: int, *, node_id: int, stage: str, reason: str) -> None:
        """A reply that arrived but was refused."""
        self._round(server_round).rejected.append(Rejection(node_id=node_id, stage=stage, reason=reason))

    def cap(self, server_round: int, *, node_id: int, declared: float, used: float) -> None:
        """A reply whose declared weight was lowered to the cap before aggregation."""
        self._round(server_round).capped.append(CappedWeight(node_id=node_id, declared=declared, used=used))

    def fail(self, server_round: int, *, node_id: int, reason: str) -> None:
        """A node that answered a protocol stage with an error (it dropped out)."""
        self._round(server_round).failures.append(Failure(node_id=node_id, reason=reason))

    def add_traffic(self, server_round: int, *, node_id: int, message: Message, upstream: bool) -> None:
        """An extra protocol message exchanged with ``node_id``; its bytes are counted in ``pop``,
        outside the round's timing, as measuring is not part of the protocol's cost."""
        self._messages.setdefault(server_round, []).append((node_id, message, upstream))

    def abort(self, server_round: int, reason: str) -> None:
        """The round produced no aggregate; the global model stays as it was.

        The first reason is kept: a later one is a consequence of it.
        """
        events = self._round(server_round)
        events.error = events.error or reason

    def pop(self, server_round: int) -> RoundEvents:
        events = self._rounds.pop(server_round, RoundEvents())
        for node_id, message, upstream in self._messages.pop(server_round, []):
            totals = events.traffic.setdefault(node_id, [0, 0])
            totals[0 if upstream else 1] += message_wire_bytes(message)
        return events
