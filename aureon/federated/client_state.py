"""Client state that must outlive the client process, and the replay rule.

Flower keeps ``context.state`` in memory, per run: a restarted SuperNode, or a
server that resumes as a new Flower run, would lose it. So after every trained
round the run-scoped records (top-k error feedback, ...) and the reply itself
are written to ``<state-dir>/<run key>/partition-<id>.state`` (atomically),
and read back before the next round. The privacy ledger is not here: it is
keyed by the client's data, not by the run (aureon/privacy/ledger.py).

Replay without a second release: a server that resumed from a checkpoint
taken before this client's reply was aggregated asks the same round again.
If the request is byte for byte the one already answered (arrays and round
config), the client sends back its stored reply: no new noise, no new charge.
Any other request, even for the same round, is trained and charged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict
from google.protobuf.message import DecodeError

from aureon import keys
from aureon.config import AureonConfig
from aureon.exceptions import AureonError
from aureon.federated.refusals import refusal
from aureon.federated.train_request import TrainRequest, TrainRequestError
from aureon.files import SECRET_MODE, atomic_write_bytes

PERSISTED_KEYS = (keys.STATE_RESIDUAL, keys.STATE_SECAGG_PROGRESS)
_META = "aureon.client-state"
_AFTER, _REPLY = "after/", "reply/"
_CHECKSUM_BYTES = 32  # sha256 of the payload, first in the file: damage is found before parsing

TrainHandler = Callable[[Message, Context, AureonConfig], Message]


def default_state_dir(partition_id: int) -> Path:
    """A per-user data directory, absolute: the ledger must not depend on where a client starts."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser().resolve() / "aureon" / f"client-{partition_id}"


class ClientStateError(AureonError):
    """A client state file cannot be read: the client stops instead of guessing."""


@dataclass
class SavedState:
    """The last answered round: its input's digest, the reply sent and the state after it."""

    round: int
    digest: str
    after: RecordDict
    reply: RecordDict


def input_digest(msg: Message) -> str:
    """A fingerprint of everything the server sent: message type, arrays and every config."""
    canonical = recorddict_to_proto(msg.content).SerializeToString(deterministic=True)
    return hashlib.sha256(msg.metadata.message_type.encode() + b"\0" + canonical).hexdigest()


def snapshot(state: RecordDict) -> RecordDict:
    """Copies of the persisted records present in ``state``."""
    kept = RecordDict({key: state[key] for key in PERSISTED_KEYS if key in state})
    return _copy(kept)


def _copy(records: RecordDict) -> RecordDict:
    return recorddict_from_proto(recorddict_to_proto(records))


def _replace(state: RecordDict, saved: RecordDict) -> None:
    for key in PERSISTED_KEYS:
        if key in saved:
            state[key] = saved[key]
        elif key in state:
            del state[key]


def _split(records: RecordDict, prefix: str) -> RecordDict:
    return RecordDict({k[len(prefix) :]: v for k, v in records.items() if k.startswith(prefix)})


class ClientStateStore:
    """One client's state file for one experiment."""

    def __init__(self, *, state_dir: Path, run_key: str, partition_id: int) -> None:
        safe_key = "".join(c for c in run_key if c.isalnum() or c in "-_") or "run"
        self.path = Path(state_dir) / safe_key / f"partition-{partition_id}.state"

    def load(self) -> SavedState | None:
        """The last answered round, or None before the first one."""
        if not self.path.is_file():
            return None
        try:
            content = self.path.read_bytes()
            checksum, payload = content[:_CHECKSUM_BYTES], content[_CHECKSUM_BYTES:]
            if hashlib.sha256(payload).digest() != checksum:
                raise ValueError("checksum mismatch: the file is damaged")
            proto = ProtoRecordDict()
            proto.ParseFromString(payload)
            records = recorddict_from_proto(proto)
            meta = records.config_records[_META]
            return SavedState(
                round=int(meta["round"]),  # type: ignore[arg-type]
                digest=str(meta["digest"]),
                after=_split(records, _AFTER),
                reply=_split(records, _REPLY),
            )
        except (OSError, DecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise ClientStateError(
                f"client state {self.path} is unreadable ({type(error).__name__}: {error}); "
                "move it away to start this run's client state afresh"
            ) from None

    def save(self, saved: SavedState) -> None:
        """Write atomically and durably, readable by this user only (it holds an update).

        A checksum leads the file: a flipped bit could otherwise still parse and
        replay a wrong reply.
        """
        records = RecordDict({_META: ConfigRecord({"round": saved.round, "digest": saved.digest})})
        for prefix, part in ((_AFTER, saved.after), (_REPLY, saved.reply)):
            for key, value in part.items():
                records[prefix + key] = value
        payload = recorddict_to_proto(records).SerializeToString()
        atomic_write_bytes(self.path, hashlib.sha256(payload).digest() + payload, mode=SECRET_MODE)


def store_for(msg: Message, context: Context) -> tuple[ClientStateStore, int] | None:
    """This client's store and the round being trained; None when no ``state-dir`` is configured."""
    state_dir = str(context.node_config.get(keys.NODE_STATE_DIR, "") or "")
    if not state_dir:
        return None
    request = TrainRequest.from_message(msg)
    partition_id = int(context.node_config[keys.NODE_PARTITION_ID])
    store = ClientStateStore(state_dir=Path(state_dir), run_key=request.run(context), partition_id=partition_id)
    return store, request.server_round


def train_with_persisted_state(msg: Message, context: Context, config: AureonConfig, *, train: TrainHandler) -> Message:
    """Run ``train`` with the client's persisted state, or replay the stored reply."""
    try:
        located = store_for(msg, context)
    except TrainRequestError as error:
        return refusal(msg, error)
    if located is None:
        return train(msg, context, config)
    store, server_round = located
    digest = input_digest(msg)
    saved = store.load()
    if saved is not None:
        _replace(context.state, saved.after)
        if saved.round == server_round and saved.digest == digest:
            return Message(content=_copy(saved.reply), reply_to=msg)
    reply = train(msg, context, config)
    if not reply.has_error():
        store.save(SavedState(round=server_round, digest=digest, after=snapshot(context.state), reply=reply.content))
    return reply
