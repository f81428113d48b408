"""One round's record, from the request to results.json, and the run's rounds across a resume.

Every part of the server that learns something about a round reports it to
the run's one RoundLog: the round loop (start, missing replies, where the
time went, the evaluation), the byte counter (what each client sent and
received, and its metrics), the aggregation wrappers (rejected replies,
capped weights, dropouts, protocol traffic, an aborted aggregation). The
log also holds the one copy of the weights sent this round that the
wrappers compare replies with. Once the round is evaluated the log turns
what it gathered into the round's RoundRecord; after the checkpoint it
hands the record to the run directory (RunTracker), and a resume puts the
rounds so far back from the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Message

from aureon.tracking.checkpoint import Checkpoint, round_record_from_json
from aureon.tracking.phases import CHECKPOINT, COUNT_BYTES, PHASES, SERIALIZE, PhaseClock
from aureon.tracking.records import CappedWeight, ClientRound, Failure, Rejection, RoundRecord
from aureon.tracking.run_tracker import RunTracker
from aureon.tracking.sent_weights import SentWeights
from aureon.tracking.wire import message_wire_bytes, messages_wire_bytes


@dataclass
class OpenRound:
    """What one round has gathered so far; ``record`` is set once the round is evaluated."""

    started: float
    clock: PhaseClock = field(default_factory=PhaseClock)
    clients: list[ClientRound] = field(default_factory=list)
    reply_failures: list[Failure] = field(default_factory=list)  # error replies, in reply order
    failures: list[Failure] = field(default_factory=list)  # missing replies, protocol dropouts
    rejected: list[Rejection] = field(default_factory=list)
    capped: list[CappedWeight] = field(default_factory=list)
    error: str | None = None
    client_level: dict[str, Any] | None = None
    bytes_down: dict[int, int] = field(default_factory=dict)
    traffic: list[tuple[int, Message, bool]] = field(default_factory=list)  # (node, message, upstream)
    record: RoundRecord | None = None


class RoundLog:
    """The run's rounds: the ones in progress here, the finished ones in ``tracker``'s run directory.

    Without a tracker (a strategy tested alone) rounds are gathered and
    closed, but nothing is written and there is nothing to checkpoint.
    """

    def __init__(self, tracker: RunTracker | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.tracker = tracker
        self.sent = SentWeights()
        self._clock = clock
        self._open: dict[int, OpenRound] = {}

    # ------------------------------------------------------------ the round loop
    def begin(self, server_round: int) -> None:
        """The round starts now: its seconds count from here.

        Events reported for it earlier stay (secure aggregation sets a round up
        during the previous one's unmasking, and records what went wrong there).
        """
        self.events(server_round).started = self._clock()

    def events(self, server_round: int) -> OpenRound:
        """What ``server_round`` has gathered so far (opened now if nothing reported it yet)."""
        state = self._open.get(server_round)
        if state is None:
            state = self._open[server_round] = OpenRound(started=self._clock())
        return state

    def phase(self, server_round: int, name: str) -> AbstractContextManager[None]:
        """Charge the time inside the block to phase ``name`` of ``server_round``."""
        return self.events(server_round).clock.phase(name)

    def evaluated(self, server_round: int, *, test_accuracy: float, test_loss: float) -> RoundRecord | None:
        """The model after ``server_round`` (0: the initial model) was evaluated; the round's record is made.

        The round's seconds end here, before protocol bytes are counted, as
        before the checkpoint; the record is written by ``close``.
        """
        if server_round == 0:
            if self.tracker is not None:
                self.tracker.log_initial(test_accuracy, test_loss)
            return None
        state = self.events(server_round)
        seconds = self._clock() - state.started
        with state.clock.phase(COUNT_BYTES):
            traffic = _traffic_bytes(state.traffic)
        for client in state.clients:
            up, down = traffic.get(client.node_id, (0, 0))
            client.bytes_up += up
            client.bytes_down += down
        for name in PHASES:
            if name != CHECKPOINT:
                state.clock.seconds.setdefault(name, 0.0)
        state.record = RoundRecord(
            round=server_round,
            test_accuracy=test_accuracy,
            test_loss=test_loss,
            seconds=seconds,
            clients=state.clients,
            failures=[*state.reply_failures, *state.failures],
            rejected=state.rejected,
            capped=state.capped,
            aggregation_error=state.error,
            phases=state.clock.seconds,
            client_level=state.client_level,  # the same dict: the checkpoint's seconds join it when saved
        )
        return state.record

    def close(self, server_round: int) -> RoundRecord:
        """Hand the evaluated round to the run directory (results.json, TensorBoard, console)."""
        state = self._open.pop(server_round, None)
        if state is None or state.record is None:
            raise RuntimeError(f"round {server_round} cannot be closed before it is evaluated")
        if self.tracker is not None:
            self.tracker.log_round(state.record)
        return state.record

    # ---------------------------------------------------- what was sent and received
    def share_weights(self, server_round: int, arrays: ArrayRecord) -> dict[str, np.ndarray]:
        """The weights sent in ``server_round`` as numpy arrays, read once and shared by every wrapper."""
        with self.phase(server_round, SERIALIZE):
            return self.sent.take(server_round, arrays)

    def weights_sent(self, server_round: int) -> dict[str, np.ndarray] | None:
        """The shared copy of the weights sent in ``server_round`` (None if that round sent none)."""
        return self.sent.of(server_round)

    def wire_bytes(self, server_round: int, message: Message) -> int:
        """The bytes ``message`` takes on the wire, counted in the round's ``count_bytes`` phase."""
        with self.phase(server_round, COUNT_BYTES):
            return message_wire_bytes(message)

    def sent_train(self, server_round: int, messages: Iterable[Message]) -> None:
        """The train messages as they leave the server: each node's download bytes."""
        state = self.events(server_round)
        messages = list(messages)
        with self.phase(server_round, COUNT_BYTES):  # the shared global model is serialized once for all
            sizes = messages_wire_bytes(messages)
        state.bytes_down = {m.metadata.dst_node_id: size for m, size in zip(messages, sizes, strict=True)}

    def replied(
        self,
        server_round: int,
        reply: Message,
        *,
        partition_id: int | None,
        num_examples: int | None,
        train_loss: float | None,
        epsilon: float | None,
    ) -> None:
        """A client's train reply as it arrived (before any wrapper judged it); ``partition_id`` is its label."""
        node_id = reply.metadata.src_node_id
        state = self.events(server_round)
        state.clients.append(
            ClientRound(
                partition_id=partition_id,
                node_id=node_id,
                num_examples=num_examples,
                train_loss=train_loss,
                epsilon=epsilon,
                bytes_up=self.wire_bytes(server_round, reply),
                bytes_down=state.bytes_down.get(node_id, 0),
            )
        )

    def reply_failed(self, server_round: int, *, node_id: int, reason: str) -> None:
        """A train reply that is an error (the client failed)."""
        self.events(server_round).reply_failures.append(Failure(node_id=node_id, reason=reason))

    # --------------------------------------------------- what the wrappers decided
    def reject(self, server_round: int, *, node_id: int, stage: str, reason: str) -> None:
        """A reply that arrived but was refused."""
        self.events(server_round).rejected.append(Rejection(node_id=node_id, stage=stage, reason=reason))

    def cap(self, server_round: int, *, node_id: int, declared: float, used: float) -> None:
        """A reply whose declared weight was lowered to the cap before aggregation."""
        self.events(server_round).capped.append(CappedWeight(node_id=node_id, declared=declared, used=used))

    def fail(self, server_round: int, *, node_id: int, reason: str) -> None:
        """A sampled node that did not take part: no reply in time, or an error at a protocol stage."""
        self.events(server_round).failures.append(Failure(node_id=node_id, reason=reason))

    def add_traffic(self, server_round: int, *, node_id: int, message: Message, upstream: bool) -> None:
        """An extra protocol message exchanged with ``node_id``; its bytes are counted after the
        round's seconds end, as measuring is not part of the protocol's cost."""
        self.events(server_round).traffic.append((node_id, message, upstream))

    def abort(self, server_round: int, reason: str) -> None:
        """The round produced no aggregate; the global model stays as it was.

        The first reason is kept: a later one is a consequence of it.
        """
        state = self.events(server_round)
        state.error = state.error or reason

    def client_level(self, server_round: int, entry: dict[str, Any]) -> None:
        """The round's client-level DP release (epsilon spent so far, noise, clipping norm)."""
        self.events(server_round).client_level = dict(entry)

    def stop(self, server_round: int, reason: str) -> None:
        """The run ends before ``server_round`` (its budget would be passed): the round is dropped unrecorded."""
        self._open.pop(server_round, None)
        if self.tracker is not None:
            self.tracker.stop(reason)

    # -------------------------------------------------------------- checkpoints
    def to_checkpoint(
        self,
        *,
        server_round: int,
        run_key: str,
        arrays: dict[str, np.ndarray],
        strategy_state: dict[str, dict[str, np.ndarray] | list[np.ndarray]],
        identity: dict[str, Any],
    ) -> Checkpoint:
        """The state after ``server_round``, with every round recorded so far (its own included)."""
        tracker = self._require_tracker("checkpoint")
        evaluated = [s.record for _, s in sorted(self._open.items()) if s.record is not None]
        return Checkpoint(
            round=server_round,
            run_key=run_key,
            arrays=arrays,
            strategy_state=strategy_state,
            rounds=[r.to_json() for r in [*tracker.rounds, *evaluated]],
            initial=tracker.initial,
            elapsed_seconds=tracker.elapsed_seconds,
            identity=identity,
        )

    def restore(self, checkpoint: Checkpoint, *, source: str) -> None:
        """Continue the run saved in ``checkpoint`` (read from ``source``): its rounds, initial model and time."""
        tracker = self._require_tracker("restore")
        self._open.clear()
        self.sent.clear()
        tracker.restore(
            rounds=[round_record_from_json(r) for r in checkpoint.rounds],
            initial=checkpoint.initial,
            elapsed_seconds=checkpoint.elapsed_seconds,
            note=f"resuming {source} after round {checkpoint.round}",
        )

    def _require_tracker(self, action: str) -> RunTracker:
        if self.tracker is None:
            raise RuntimeError(f"a RoundLog without a run directory (tracker=None) cannot {action}")
        return self.tracker


def _traffic_bytes(traffic: list[tuple[int, Message, bool]]) -> dict[int, tuple[int, int]]:
    """Protocol bytes per node: (upstream, downstream)."""
    totals: dict[int, list[int]] = {}
    sizes = messages_wire_bytes(message for _, message, _ in traffic)
    for (node_id, _, upstream), size in zip(traffic, sizes, strict=True):
        pair = totals.setdefault(node_id, [0, 0])
        pair[0 if upstream else 1] += size
    return {node: (up, down) for node, (up, down) in totals.items()}
