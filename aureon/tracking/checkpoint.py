"""A run's checkpoint: everything needed to continue after the last completed round.

One ``checkpoint.npz`` in the run directory, replaced atomically after every
round (aureon.files.atomic_write_bytes), so a crash at any moment leaves
either the previous round's checkpoint or this one. Arrays are stored
as plain numpy arrays (no pickle); the rest is one JSON document inside it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord

from aureon.config.run import CHECKPOINT_FILE
from aureon.exceptions import AureonError, describe
from aureon.files import atomic_write_bytes
from aureon.tracking.records import CappedWeight, ClientRound, Failure, Rejection, RoundRecord

FORMAT_VERSION = 1
_META = "__meta__"
_SEP = "::"
_META_KEYS = {
    "version",
    "round",
    "run_key",
    "layout",
    "rounds",
    "initial",
    "elapsed_seconds",
    "identity",
}


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
    for attr, state in checkpoint.strategy_state.items():
        if isinstance(state, dict):
            layout["strategy"][attr] = {"kind": "dict", "names": list(state)}
            items = list(state.items())
        else:
            layout["strategy"][attr] = {"kind": "list", "names": [str(i) for i in range(len(state))]}
            items = [(str(i), v) for i, v in enumerate(state)]
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
    buffer = io.BytesIO()
    np.savez(buffer, **payload)  # type: ignore[arg-type]
    return atomic_write_bytes(path, buffer.getvalue())


# What a damaged npz can raise from zipfile, zlib, numpy and json while it is read.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    RuntimeError,
    NotImplementedError,
    OverflowError,
    zipfile.BadZipFile,
    zlib.error,
)


def _fail(path: Path, what: str) -> CheckpointError:
    """The one error format of this module: ``checkpoint <path>: <what>``."""
    return CheckpointError(f"checkpoint {path}: {what}")


def _require(ok: bool, path: Path, what: str) -> None:
    """Raise a CheckpointError for ``path`` unless ``ok``."""
    if not ok:
        raise _fail(path, what)


def _is_str_list(value: Any) -> bool:
    """Names in the layout are JSON strings; anything else cannot index the npz."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_number(value: Any) -> bool:
    """An int or float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_meta(path: Path, meta: Any) -> None:
    """Every field of the JSON document has the type the loader relies on."""
    _require(isinstance(meta, dict), path, f"metadata must be a JSON object, got {type(meta).__name__}")
    _require(
        meta.get("version") == FORMAT_VERSION,
        path,
        f"has format version {meta.get('version')!r}, expected {FORMAT_VERSION}",
    )
    missing = sorted(_META_KEYS - set(meta))
    _require(not missing, path, f"metadata lacks {', '.join(missing)}")
    last = meta["round"]
    _require(
        isinstance(last, int) and not isinstance(last, bool) and last >= 0,
        path,
        f"round must be an integer >= 0, got {last!r}",
    )
    _require(isinstance(meta["run_key"], str), path, "run_key must be a string")
    _require(_is_number(meta["elapsed_seconds"]), path, "elapsed_seconds must be a number")
    _require(isinstance(meta["identity"], dict), path, "identity must be a JSON object")
    _require(
        meta["initial"] is None or isinstance(meta["initial"], dict), path, "initial must be null or a JSON object"
    )
    rounds = meta["rounds"]
    _require(
        isinstance(rounds, list) and all(isinstance(r, dict) for r in rounds),
        path,
        "rounds must be a list of JSON objects",
    )
    layout = meta["layout"]
    _require(
        isinstance(layout, dict) and _is_str_list(layout.get("arrays")) and isinstance(layout.get("strategy"), dict),
        path,
        "layout must hold a list of array names and a strategy object",
    )
    for attr, spec in layout["strategy"].items():
        _require(
            isinstance(spec, dict) and spec.get("kind") in ("dict", "list") and _is_str_list(spec.get("names")),
            path,
            f"strategy state {attr!r} must have kind 'dict' or 'list' and a list of names",
        )


def _array(path: Path, data: Any, key: str) -> np.ndarray:
    """One stored array, which must exist and hold numbers."""
    _require(key in data.files, path, f"lacks the array {key!r} that its layout lists")
    array = data[key]
    _require(array.dtype.kind in "biufc", path, f"array {key!r} has non-numeric dtype {array.dtype}")
    return array


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """(metadata, model arrays, strategy state) from the npz, checked as they are read."""
    with np.load(path, allow_pickle=False) as data:
        _require(_META in data.files, path, "lacks its metadata entry")
        raw_meta = data[_META]
        _require(raw_meta.dtype.kind == "U" and raw_meta.ndim == 0, path, "metadata entry is not a JSON string")
        meta = json.loads(str(raw_meta))
        _check_meta(path, meta)
        layout = meta["layout"]
        arrays = {name: _array(path, data, f"a{_SEP}{name}") for name in layout["arrays"]}
        strategy: dict[str, Any] = {}
        for attr, spec in layout["strategy"].items():
            values = [(n, _array(path, data, f"s{_SEP}{attr}{_SEP}{n}")) for n in spec["names"]]
            strategy[attr] = dict(values) if spec["kind"] == "dict" else [v for _, v in values]
    return meta, arrays, strategy


def _check_rounds(path: Path, rounds: list[dict[str, Any]]) -> None:
    """Every stored round record rebuilds (resume turns them back into RoundRecords)."""
    for index, data in enumerate(rounds):
        try:
            round_record_from_json(data)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise _fail(path, f"round record {index} is malformed ({describe(err)})") from err


def load_checkpoint(run_dir: Path) -> Checkpoint:
    """The checkpoint of ``run_dir``; a CheckpointError says which file and what is wrong.

    A damaged file (truncated, bit-flipped, empty, or written by something
    else) gives one ``checkpoint <path>: <what>`` line, never a library's traceback.
    """
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise _fail(
            path,
            f"missing: resume={str(run_dir)!r} has no {CHECKPOINT_FILE}; expected the run "
            "directory of a run that completed at least one round",
        )
    try:
        meta, arrays, strategy = _read(path)
    except CheckpointError:
        raise
    except _READ_ERRORS as err:
        raise _fail(path, f"not a readable AUREON checkpoint ({describe(err)})") from err
    _check_rounds(path, meta["rounds"])
    return Checkpoint(
        round=meta["round"],
        run_key=meta["run_key"],
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
    """The inverse of ``RoundRecord.to_json`` (derived totals are recomputed, not read).

    Records from checkpoints older than per-phase timing have no ``phases``: they get none.
    """
    nested = {"clients": ClientRound, "failures": Failure, "rejected": Rejection, "capped": CappedWeight}
    fields = {f.name for f in dataclasses.fields(RoundRecord)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            continue
        kwargs[key] = [_build(nested[key], item) for item in value] if key in nested else value
    phases = kwargs.get("phases", {})
    if not isinstance(phases, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in phases.items()):
        raise ValueError(f"phases must map phase names to seconds, got {phases!r}")
    return RoundRecord(**kwargs)
