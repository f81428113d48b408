"""A wrapper over any mean-based strategy that aggregates client updates securely.

Flower's SecAgg+ runs only on its legacy stack; this drives AUREON's
protocol (aureon.secagg) with Message-API round trips:

- configure_train samples clients through the inner strategy, makes sure
  stages 0-2 (setup, advertise keys, share keys) are done for them, and
  returns the inner strategy's train messages retyped ``train.secagg``,
  each carrying the shares routed to that client (stage 3);
- aggregate_train takes the masked inputs, runs stage 4 (unmask) and hands
  the inner strategy a single reply holding the securely computed weighted
  mean, so FedAvg, FedProx or FedAdam aggregate as they always do.

Every exchange is a round trip through the SuperLink, which costs more than
the protocol's arithmetic on small models. So the rounds are pipelined:
each masked-input reply also advertises the client's fresh keys for the
next round, and the unmask request carries the next round's setup and
share-keys requests, whose replies ride back with the unmask shares. When
the next round samples the same clients, it starts directly with training:
two exchanges per round instead of four. Secrets are still fresh per round
and each stage's checks are unchanged; only the transport is shared.

Each round is set up once: clients refuse a second setup of a round (two
sums of one round, with and without a victim, would reveal its update), and
so does this wrapper. Rounds are prepared ahead only when the inner strategy
samples every node and every client sampled this round reached unmasking;
a sampled client that missed the prepared key sharing sits out that round
(recorded), and the round after it sets up afresh for everyone.

The server never sees a client's update, weight or norm, only their sums;
per-client plain metrics (loss, epsilon, partition id) still travel.
A round that cannot finish correctly, or whose unmasked sum no honest inputs
could produce (a mean outside the clipping range, an impossible total
weight), keeps the previous global model and records why in results.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from logging import ERROR, WARNING
from typing import Final

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.message import make_message
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.exceptions import ConfigError, SecureAggregationError
from aureon.secagg import SecAggServer, SecAggSettings, messages
from aureon.secagg.vector import VectorLayout
from aureon.strategies.wrapper import StrategyWrapper
from aureon.tracking.round_log import RoundLog

PLAIN_METRICS_SKIPPED: Final = (keys.NUM_EXAMPLES,)


@dataclass
class _Session:
    """One round's protocol once stages 0-2 are done."""

    server_round: int
    protocol: SecAggServer
    train_requests: dict[int, ConfigRecord] = field(default_factory=dict)
    recorded: int = 0  # rejections already written to the ledger
    ahead: dict[int, dict[str, ConfigRecord]] = field(default_factory=dict)  # setup sent ahead, per node


class SecureAggregation(StrategyWrapper):
    """Runs SecAgg/SecAgg+ around ``inner``'s sampling and aggregation."""

    def __init__(
        self,
        inner: Strategy,
        *,
        settings: SecAggSettings,
        ledger: RoundLog,
        timeout: float | None = None,
        num_rounds: int | None = None,
    ) -> None:
        settings.check()
        super().__init__(inner)
        self.settings = settings
        self.ledger = ledger
        self.timeout = timeout
        self.num_rounds = num_rounds
        self._grid: Grid | None = None
        self._layout: VectorLayout | None = None
        self._global: npt.NDArray[np.float64] | None = None
        self._current: _Session | None = None  # the round being trained
        self._next: _Session | None = None  # the next round, set up during this one's unmasking
        self._adverts: dict[int, ConfigRecord] = {}  # public keys clients advertised ahead
        self._last_round = 0  # the latest round whose setup was sent: never set up again
        self._sampled: set[int] = set()  # the nodes the inner strategy sampled this round

    # ---------------------------------------------------------------- helpers
    def _exchange(
        self,
        server_round: int,
        requests: Mapping[int, ConfigRecord],
        message_type: str,
        stage: str,
        extra: Mapping[int, Mapping[str, ConfigRecord]] | None = None,
    ) -> dict[int, RecordDict]:
        """Send one request per node, wait for replies; errors count as dropouts."""
        if self._grid is None or not requests:
            return {}
        sent = {
            node_id: Message(
                RecordDict({keys.SECAGG: request, **(extra or {}).get(node_id, {})}),
                dst_node_id=node_id,
                message_type=message_type,
                group_id=str(server_round),
            )
            for node_id, request in requests.items()
        }
        for node_id, message in sent.items():
            self.ledger.add_traffic(server_round, node_id=node_id, message=message, upstream=False)
        replies: dict[int, RecordDict] = {}
        for reply in self._grid.send_and_receive(list(sent.values()), timeout=self.timeout):
            node_id = reply.metadata.src_node_id
            self.ledger.add_traffic(server_round, node_id=node_id, message=reply, upstream=True)
            if reply.has_error():
                reason = f"secure aggregation {stage}: {reply.error.reason}"
                log(WARNING, "round %d: node %d dropped out: %s", server_round, node_id, reason)
                self.ledger.fail(server_round, node_id=node_id, reason=reason)
            elif node_id in sent:
                replies[node_id] = reply.content
        return replies

    def _protocol(self, server_round: int, node_ids: Iterable[int]) -> SecAggServer:
        """A protocol run for a round never set up before (its graph from fresh entropy)."""
        if self._layout is None:
            raise SecureAggregationError("no global model: configure_train must run first")
        if server_round <= self._last_round:
            raise SecureAggregationError(
                f"round {server_round} cannot be set up: round {self._last_round} already was, and "
                "a round is set up once and rounds only move forward (clients refuse the rest)"
            )
        return SecAggServer(
            settings=self.settings,
            node_ids=sorted(node_ids),
            server_round=server_round,
            vector_length=self._layout.size + 1,
        )

    def _pipelining(self) -> bool:
        """Prepare the next round now only if the inner strategy will sample the same nodes."""
        fraction = getattr(self.inner, "fraction_train", 1.0)
        return isinstance(fraction, (int, float)) and fraction >= 1.0

    @staticmethod
    def _indexed(protocol: SecAggServer, adverts: Mapping[int, ConfigRecord]) -> dict[int, RecordDict]:
        """Keys advertised ahead, as stage-1 replies of ``protocol``.

        They were sent before indices were assigned: the index is filled in here;
        the round the client bound them to is checked by the protocol.
        """
        replies = {}
        for node_id, record in adverts.items():
            index = protocol.index_of.get(node_id)
            if index is not None:
                advert = ConfigRecord(dict(record.items()))
                advert[messages.INDEX] = index
                replies[node_id] = RecordDict({keys.SECAGG: advert})
        return replies

    def _record(self, session: _Session) -> None:
        for rejection in session.protocol.rejections[session.recorded :]:
            self.ledger.reject(
                session.server_round,
                node_id=rejection.node_id,
                stage=f"secure-aggregation {rejection.stage}",
                reason=rejection.reason,
            )
        session.recorded = len(session.protocol.rejections)

    def _abort(self, server_round: int, error: Exception) -> None:
        log(ERROR, "round %d: %s; the global model is kept", server_round, error)
        self.ledger.abort(server_round, str(error))

    # --------------------------------------------------------- stages 0 to 2
    def _set_up(self, server_round: int, sampled: set[int]) -> _Session:
        """Stages 0-2 now, for ``sampled`` (keys advertised ahead spare their setup exchange)."""
        session = _Session(server_round, self._protocol(server_round, sampled))
        protocol = session.protocol
        try:
            setup = protocol.setup_requests()
            self._last_round = server_round
            adverts = {n: a for n, a in self._adverts.items() if a.get(messages.ROUND) == server_round}
            ahead = self._indexed(protocol, adverts)
            self._adverts = {}
            fresh = {node: request for node, request in setup.items() if node not in ahead}
            replies = self._exchange(server_round, fresh, keys.SECAGG_SETUP, "setup")
            share_requests = protocol.receive_keys({**ahead, **replies})
            with_setup = {n: {keys.SECAGG_SETUP_RECORD: setup[n]} for n in share_requests if n in ahead}
            replies = self._exchange(
                server_round, share_requests, keys.SECAGG_SHARE_KEYS, "share-keys", extra=with_setup
            )
            session.train_requests = protocol.receive_shares(replies)
        finally:
            self._record(session)
        return session

    def _prepare_next(
        self, next_round: int, reachable: set[int]
    ) -> tuple[_Session | None, dict[int, dict[str, ConfigRecord]]]:
        """Stages 0-1 of the next round from the keys advertised with this round's masked inputs.

        Returns the session and, per node, the setup and share-keys requests to
        send along with this round's unmask request.
        """
        adverts = {n: a for n, a in self._adverts.items() if n in reachable and a.get(messages.ROUND) == next_round}
        if (self.num_rounds is not None and next_round > self.num_rounds) or not adverts:
            return None, {}
        if not self._pipelining() or reachable != self._sampled:
            return None, {}  # the next round sets up afresh, with whoever it samples
        session: _Session | None = None
        try:
            session = _Session(next_round, self._protocol(next_round, adverts))
            setup = session.protocol.setup_requests()
            share_requests = session.protocol.receive_keys(self._indexed(session.protocol, adverts))
        except (SecureAggregationError, ConfigError) as error:
            log(WARNING, "round %d will set up afresh: %s", next_round, error)
            return None, {}  # the advertised keys stay usable for a fresh setup
        finally:
            if session is not None:
                self._record(session)
        self._adverts = {}  # the clients spend these keys on the requests below
        self._last_round = next_round
        session.ahead = {
            node: {keys.SECAGG_SETUP_RECORD: setup[node], keys.SECAGG_SHARE_KEYS_RECORD: request}
            for node, request in share_requests.items()
        }
        return session, session.ahead

    def _finish_next(self, server_round: int, session: _Session, replies: Mapping[int, RecordDict]) -> None:
        """Stage 2 of the next round, from the shares that came back with the unmask replies.

        A node whose reply did not come back is asked once more, with the same
        requests: it answers a retransmission with what it sent, so a lost
        reply costs one exchange, not the node's place in the next round.
        """
        shares, declined = _shares_from(session.server_round, replies)
        lost = {n: extra for n, extra in session.ahead.items() if n not in shares and n not in declined}
        if lost:
            retried = self._exchange(
                server_round,
                {n: extra[keys.SECAGG_SHARE_KEYS_RECORD] for n, extra in lost.items()},
                keys.SECAGG_SHARE_KEYS,
                f"share-keys of round {session.server_round} (asked again)",
                extra={n: {keys.SECAGG_SETUP_RECORD: extra[keys.SECAGG_SETUP_RECORD]} for n, extra in lost.items()},
            )
            shares.update(retried)
        try:
            session.train_requests = session.protocol.receive_shares(shares)
        except SecureAggregationError as error:
            log(WARNING, "round %d was set up ahead and cannot run: %s", session.server_round, error)
            self.ledger.abort(
                session.server_round,
                f"{error}; the round was set up during round {session.server_round - 1}'s unmasking "
                "and is not set up twice",
            )
            return
        finally:
            self._record(session)
        self._next = session

    def _take_next(self, server_round: int, sampled: set[int]) -> _Session | None:
        """The session prepared last round, for the sampled clients that completed its stage 2.

        A sampled client outside it sits out this round (recorded as a
        failure): the round is already set up, and a second setup would be
        refused. Prepared clients not sampled simply drop out of it.
        """
        session, self._next = self._next, None
        if session is None or session.server_round != server_round or self._layout is None:
            return None
        if session.protocol.vector_length != self._layout.size + 1:
            return None
        for node_id in sorted(sampled - set(session.train_requests)):
            reason = (
                f"secure aggregation: sits out round {server_round}, which was set up during round "
                f"{server_round - 1} without this node's key sharing (a round is set up once); "
                "it takes part again from the next fresh setup"
            )
            log(WARNING, "round %d: node %d %s", server_round, node_id, reason)
            self.ledger.fail(server_round, node_id=node_id, reason=reason)
        session.train_requests = {n: r for n, r in session.train_requests.items() if n in sampled}
        return session

    def _session_for(self, server_round: int, sampled: set[int]) -> _Session:
        """The prepared session if there is one, else a fresh setup (only for a round not set up yet)."""
        session = self._take_next(server_round, sampled)
        if session is not None:
            return session
        if server_round <= self._last_round:
            raise SecureAggregationError(
                f"round {server_round} was set up ahead and cannot run; it is not set up twice "
                "(clients refuse a second setup of a round), so it keeps the previous model"
            )
        return self._set_up(server_round, sampled)

    # ------------------------------------------------------------------ train
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._grid = grid
        self._current = None
        train_messages = {
            m.metadata.dst_node_id: m for m in self.inner.configure_train(server_round, arrays, config, grid)
        }
        if not train_messages:
            self._next = None
            return []
        self._layout = VectorLayout.of(arrays)
        self._global = self._layout.flatten(arrays)
        self._sampled = set(train_messages)
        try:
            session = self._session_for(server_round, self._sampled)
        except (SecureAggregationError, ConfigError) as error:
            self._abort(server_round, error)
            return []
        self._current = session
        out = []
        ahead = self._pipelining() and (self.num_rounds is None or server_round < self.num_rounds)
        for node_id, request in session.train_requests.items():
            if ahead:
                request[messages.NEXT_ROUND] = server_round + 1
            content = RecordDict(dict(train_messages[node_id].content.items()))
            content[keys.SECAGG] = request
            out.append(
                Message(
                    content,
                    dst_node_id=node_id,
                    message_type=keys.SECAGG_TRAIN,
                    group_id=str(server_round),
                )
            )
        return out

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        session, self._current = self._current, None
        replies = list(replies)
        layout, global_vector = self._layout, self._global
        if session is None or session.server_round != server_round or layout is None or global_vector is None:
            return None, None  # the round was aborted before training; already recorded
        protocol = session.protocol
        contents = {r.metadata.src_node_id: r.content for r in replies if not r.has_error()}
        self._adverts = {
            node: content.config_records[keys.SECAGG_NEXT]
            for node, content in contents.items()
            if keys.SECAGG_NEXT in content.config_records
        }
        try:
            unmask_requests = protocol.receive_masked(contents)
        except SecureAggregationError as error:
            self._abort(server_round, error)
            return None, None
        finally:
            self._record(session)
        upcoming, extra = self._prepare_next(server_round + 1, set(unmask_requests))
        shares = self._exchange(server_round, unmask_requests, keys.SECAGG_UNMASK, "unmask", extra=extra)
        if upcoming is not None:
            self._finish_next(server_round, upcoming, shares)
        try:
            secure_sum = protocol.receive_unmask(shares)
            mean_update = secure_sum.mean()
        except SecureAggregationError as error:
            self._abort(server_round, error)
            return None, None
        finally:
            self._record(session)
        aggregated = layout.unflatten(global_vector + mean_update)
        contributors = set(secure_sum.contributors)
        metrics = _mean_plain_metrics([contents[n] for n in sorted(contributors)])
        metrics[keys.NUM_EXAMPLES] = secure_sum.total_weight
        template = next(r for r in replies if r.metadata.src_node_id in contributors)
        summary = make_message(
            metadata=template.metadata, content=RecordDict({keys.ARRAYS: aggregated, keys.METRICS: metrics})
        )
        return self.inner.aggregate_train(server_round, [summary])

    # --------------------------------------------------------------- evaluate


def _shares_from(next_round: int, replies: Mapping[int, RecordDict]) -> tuple[dict[int, RecordDict], set[int]]:
    """The next round's stage-2 replies riding on unmask replies, and the nodes that declined."""
    shares, declined = {}, set()
    for node_id, content in replies.items():
        record = content.config_records.get(keys.SECAGG_SHARES_RECORD)
        if record is not None and messages.REFUSED in record:
            log(
                WARNING, "round %d: node %d declined to set up ahead: %s", next_round, node_id, record[messages.REFUSED]
            )
            declined.add(node_id)
        elif record is not None:
            shares[node_id] = RecordDict({keys.SECAGG: record})
    return shares, declined


def _mean_plain_metrics(contents: list[RecordDict]) -> MetricRecord:
    """Unweighted mean of the scalar metrics clients sent in the clear (weights stay secret)."""
    sums: dict[str, list[float]] = {}
    for content in contents:
        for record in content.metric_records.values():
            for name, value in record.items():
                if name in PLAIN_METRICS_SKIPPED or isinstance(value, (list, bool)):
                    continue
                sums.setdefault(name, []).append(float(value))
    return MetricRecord({name: float(np.mean(values)) for name, values in sums.items()})
