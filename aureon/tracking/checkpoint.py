"""A run's checkpoint: everything needed to continue after the last completed round.

One ``checkpoint.npz`` in the run directory, replaced atomically after every
round (written to a temporary file, then renamed), so a crash at any moment
leaves either the previous round's checkpoint or this one. Arrays are stored
as plain numpy arrays (no pickle); the rest is one JSON document inside it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord

from aureon.exceptions import AureonError
from aureon.tracking.records import ClientRound, Failure, Rejection, RoundRecord

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT_VERSION = 1
_META = "__meta__"
_SEP = "::"


class CheckpointError(AureonError):
    """A checkpoint is missing, unreadable or belongs to a different run."""


@dataclass
class Checkpoint:
    """The state after round ``round``: global model, strategy state and the rounds so far."""

    round: int
    run_key: str
    arrays: dict[str, np.ndarray]
    strategy_state: dict[str, dict[str, np.ndarray] | list[np.ndarray]] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    initial: dict[str, float] | None = None
    elapsed_seconds: float = 0.0
    identity: dict[str, Any] = field(default_factory=dict)

    def array_record(self) -> ArrayRecord:
        return ArrayRecord({name: Array(np.ascontiguousarray(a)) for name, a in self.arrays.items()})


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` into ``run_dir`` atomically; returns its path."""
    path = checkpoint_path(run_dir)
    payload: dict[str, np.ndarray] = {}
    layout: dict[str, Any] = {"arrays": list(checkpoint.arrays), "strategy": {}}
    for name, value in checkpoint.arrays.items():
        payload[f"a{_SEP}{name}"] = np.asarray(value)
    for attr, value in checkpoint.strategy_state.items():
        if isinstance(value, dict):
            layout["strategy"][attr] = {"kind": "dict", "names": list(value)}
            items = list(value.items())
        else:
            layout["strategy"][attr] = {"kind": "list", "names": [str(i) for i in range(len(value))]}
            items = [(str(i), v) for i, v in enumerate(value)]
        for name, array in items:
            payload[f"s{_SEP}{attr}{_SEP}{name}"] = np.asarray(array)
    meta = {
        "version": FORMAT_VERSION,
        "round": checkpoint.round,
        "run_key": checkpoint.run_key,
        "layout": layout,
        "rounds": checkpoint.rounds,
        "initial": checkpoint.initial,
        "elapsed_seconds": checkpoint.elapsed_seconds,
        "identity": checkpoint.identity,
    }
    payload[_META] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: Path) -> Checkpoint:
    """The checkpoint of ``run_dir``; a CheckpointError says what is missing or wrong."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise CheckpointError(
            f"resume={str(run_dir)!r} has no {CHECKPOINT_FILE}; expected the run directory of a "
            "run that completed at least one round"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[_META]))
            layout = meta["layout"]
            arrays = {name: data[f"a{_SEP}{name}"] for name in layout["arrays"]}
            strategy: dict[str, dict[str, np.ndarray] | list[np.ndarray]] = {}
            for attr, spec in layout["strategy"].items():
                values = [(n, data[f"s{_SEP}{attr}{_SEP}{n}"]) for n in spec["names"]]
                strategy[attr] = dict(values) if spec["kind"] == "dict" else [v for _, v in values]
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path} is not a readable AUREON checkpoint: {err}") from err
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {meta.get('version')}, expected {FORMAT_VERSION}")
    return Checkpoint(
        round=int(meta["round"]),
        run_key=str(meta["run_key"]),
        arrays=arrays,
        strategy_state=strategy,
        rounds=list(meta["rounds"]),
        initial=meta["initial"],
        elapsed_seconds=float(meta["elapsed_seconds"]),
        identity=dict(meta["identity"]),
    )


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def round_record_from_json(data: dict[str, Any]) -> RoundRecord:
    """The inverse of ``RoundRecord.to_json`` (derived totals are recomputed, not read)."""
    nested = {"clients": ClientRound, "failures": Failure, "rejected": Rejection}
    fields = {f.name for f in dataclasses.fields(RoundRecord)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            continue
        kwargs[key] = [_build(nested[key], item) for item in value] if key in nested else value
    return RoundRecord(**kwargs)
