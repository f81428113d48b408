"""Run outputs: results.json, TensorBoard events, plots, wire-byte counting, sweep summaries."""

from aureon.tracking.records import CappedWeight, ClientRound, Failure, Rejection, RoundRecord
from aureon.tracking.run_tracker import RunTracker
from aureon.tracking.wire import message_wire_bytes

__all__ = ["CappedWeight", "ClientRound", "Failure", "Rejection", "RoundRecord", "RunTracker", "message_wire_bytes"]
