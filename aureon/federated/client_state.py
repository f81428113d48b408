"""Client state that must outlive the client process: its privacy accountant (and residual).

Flower keeps ``context.state`` in memory, per run: a restarted SuperNode, or a
server that resumes as a new Flower run, would start the accountant at zero
and under-report epsilon. So after every trained round the persisted records
are written to ``<state-dir>/<run key>/partition-<id>.state`` (atomically), and
read back before the next round.

Replaying a round is not charged twice: if the server sends the same round
with the same global model again (it resumed from a checkpoint taken before
this client's reply was aggregated), training restarts from the state before
that round. With the same seed it then reproduces the same release, which
reveals nothing new; any other input is charged on top of the latest state.
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

from aureon import keys
from aureon.config import AureonConfig

PERSISTED_KEYS = (keys.STATE_PRIVACY, keys.STATE_RESIDUAL)
_META = "aureon.client-state"
_BEFORE, _AFTER = "before/", "after/"

TrainHandler = Callable[[Message, Context, AureonConfig], Message]


@dataclass
class SavedState:
    """The persisted records before and after the last trained round, and that round's input."""

    round: int
    digest: str
    before: RecordDict
    after: RecordDict


def input_digest(msg: Message) -> str:
    """A fingerprint of what the server sent (global arrays and round config)."""
    sha = hashlib.sha256()
    for name in sorted(msg.content.array_records):
        for key, array in msg.content.array_records[name].items():
            sha.update(name.encode() + b"\0" + key.encode() + b"\0" + array.data)
    return sha.hexdigest()


def snapshot(state: RecordDict) -> RecordDict:
    """Copies of the persisted records present in ``state``."""
    kept = RecordDict({key: state[key] for key in PERSISTED_KEYS if key in state})
    return recorddict_from_proto(recorddict_to_proto(kept))  # a deep copy


def _replace(state: RecordDict, saved: RecordDict) -> None:
    for key in PERSISTED_KEYS:
        if key in saved:
            state[key] = saved[key]
        elif key in state:
            del state[key]


class ClientStateStore:
    """One client's state file for one experiment."""

    def __init__(self, *, state_dir: Path, run_key: str, partition_id: int) -> None:
        safe_key = "".join(c for c in run_key if c.isalnum() or c in "-_") or "run"
        self.path = Path(state_dir) / safe_key / f"partition-{partition_id}.state"

    def load(self) -> SavedState | None:
        if not self.path.is_file():
            return None
        proto = ProtoRecordDict()
        proto.ParseFromString(self.path.read_bytes())
        records = recorddict_from_proto(proto)
        meta = records[_META]
        before, after = RecordDict(), RecordDict()
        for key, value in records.items():
            if key.startswith(_BEFORE):
                before[key[len(_BEFORE):]] = value
            elif key.startswith(_AFTER):
                after[key[len(_AFTER):]] = value
        return SavedState(round=int(meta["round"]), digest=str(meta["digest"]), before=before, after=after)

    def save(self, saved: SavedState) -> None:
        """Write atomically: temporary file, fsync, rename."""
        records = RecordDict({_META: ConfigRecord({"round": saved.round, "digest": saved.digest})})
        for prefix, part in ((_BEFORE, saved.before), (_AFTER, saved.after)):
            for key, value in part.items():
                records[prefix + key] = value
        data = recorddict_to_proto(records).SerializeToString()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def store_for(msg: Message, context: Context) -> tuple[ClientStateStore, int] | None:
    """This client's store and the round being trained; None when no ``state-dir`` is configured."""
    state_dir = str(context.node_config.get(keys.NODE_STATE_DIR, "") or "")
    if not state_dir:
        return None
    train_config = msg.content.config_records.get(keys.CONFIG, ConfigRecord())
    run_key = str(train_config.get(keys.RUN_KEY, "") or f"flower-run-{context.run_id}")
    partition_id = int(context.node_config[keys.NODE_PARTITION_ID])
    store = ClientStateStore(state_dir=Path(state_dir), run_key=run_key, partition_id=partition_id)
    return store, int(train_config.get(keys.SERVER_ROUND, 0))


def train_with_persisted_state(
    msg: Message, context: Context, config: AureonConfig, *, train: TrainHandler
) -> Message:
    """Run ``train`` with the client's persisted state restored before and saved after."""
    located = store_for(msg, context)
    if located is None:
        return train(msg, context, config)
    store, server_round = located
    digest = input_digest(msg)
    saved = store.load()
    if saved is not None:
        replay = saved.round == server_round and saved.digest == digest
        _replace(context.state, saved.before if replay else saved.after)
    before = snapshot(context.state)
    reply = train(msg, context, config)
    if not reply.has_error():
        store.save(SavedState(round=server_round, digest=digest, before=before, after=snapshot(context.state)))
    return reply
