"""A Grid that delivers messages to a ClientApp in this process: Flower's routing, no Ray.

The real ServerApp logic (strategies, run_server) and the real ClientApp
handlers run unchanged; only the transport is a function call, so protocol
and robustness tests take seconds. ``intercept`` lets a test drop or alter
a message or its reply, as a faulty network or client would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.supercore.run import Run
from flwr.serverapp import Grid

from aureon import keys

# intercept(message, reply) -> the reply to deliver, or None to drop it
Intercept = Callable[[Message, Message], Message | None]
HANDLER_EXCEPTION_CODE = 2


class InProcessGrid(Grid):
    """``num_nodes`` nodes, node i holding partition i, all served by ``client_app``.

    Each node has its own state directory (its privacy ledger) under
    ``state_root``, a temporary directory unless given.
    """

    def __init__(
        self,
        client_app: ClientApp,
        *,
        num_nodes: int,
        seed: int = 0,
        intercept: Intercept | None = None,
        state_root: Path | None = None,
    ) -> None:
        if state_root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="aureon-grid-")
            state_root = Path(self._tmp.name)
        ids = np.random.default_rng(seed).choice(1 << 62, size=num_nodes, replace=False)
        self.node_ids = [int(i) + 1 for i in ids]
        self.app = client_app
        self.intercept = intercept
        self.contexts = {
            node_id: Context(
                run_id=1,
                node_id=node_id,
                node_config={
                    keys.NODE_PARTITION_ID: i,
                    keys.NODE_NUM_PARTITIONS: num_nodes,
                    keys.NODE_STATE_DIR: str(state_root / f"partition-{i}"),
                },
                state=RecordDict(),
                run_config={},
            )
            for i, node_id in enumerate(self.node_ids)
        }
        self.sent: list[Message] = []
        self._inbox: dict[str, Message] = {}
        self._run = Run.create_empty(run_id=1)

    def partition_of(self, node_id: int) -> int:
        return self.node_ids.index(node_id)

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(
            content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id, ttl=ttl
        )

    def get_node_ids(self) -> Iterable[int]:
        return list(self.node_ids)

    def _deliver(self, message: Message) -> Message | None:
        self.sent.append(message)
        context = self.contexts[message.metadata.dst_node_id]
        try:
            reply = self.app(message, context)
        except Exception as error:  # Flower turns a handler's exception into an error reply
            reason = f"{type(error).__name__}: {error}"
            reply = Message(Error(code=HANDLER_EXCEPTION_CODE, reason=reason), reply_to=message)
        return reply if self.intercept is None else self.intercept(message, reply)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for number, message in enumerate(messages):
            reply = self._deliver(message)
            message_id = f"{len(self.sent)}-{number}"
            if reply is not None:
                self._inbox[message_id] = reply
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._inbox.pop(i) for i in message_ids if i in self._inbox]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return list(self.pull_messages(self.push_messages(messages)))
