"""Run outputs: the round log, results.json, TensorBoard events, plots, wire bytes, sweep summaries.

The names whose modules import torch or Flower load on first use, so the Hydra
sweep callback that lives here costs nothing before a command has validated
its config.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from aureon.tracking.phases import PHASES, PhaseClock
from aureon.tracking.records import CappedWeight, ClientRound, Failure, Rejection, RoundRecord

if TYPE_CHECKING:
    from aureon.tracking.round_log import OpenRound, RoundLog
    from aureon.tracking.run_tracker import RunTracker
    from aureon.tracking.sent_weights import SentWeights
    from aureon.tracking.wire import message_wire_bytes

_LAZY = {
    "OpenRound": "aureon.tracking.round_log",
    "RoundLog": "aureon.tracking.round_log",
    "RunTracker": "aureon.tracking.run_tracker",
    "SentWeights": "aureon.tracking.sent_weights",
    "message_wire_bytes": "aureon.tracking.wire",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "PHASES",
    "CappedWeight",
    "ClientRound",
    "Failure",
    "OpenRound",
    "PhaseClock",
    "Rejection",
    "RoundLog",
    "RoundRecord",
    "RunTracker",
    "SentWeights",
    "message_wire_bytes",
]
