"""Who else hears of a run's rounds: the live dashboard, MLflow.

A listener implements any of ``on_initial``, ``on_round``, ``on_finish`` and
``on_restore`` (a resumed run's earlier rounds);
RunTracker calls them after it has written results.json, so what a listener
shows is never ahead of the run directory. A listener that fails is reported
once on the console and dropped: watching a run must not stop it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from aureon.tracking.records import RoundRecord


class RunListener:
    """Told of the initial evaluation, every round, and the end of the run; override what you need."""

    def on_initial(self, *, accuracy: float, loss: float) -> None:
        """The model before round 1 was evaluated."""

    def on_round(self, *, record: RoundRecord) -> None:
        """A round is complete and written to results.json."""

    def on_finish(self, *, results: dict[str, Any], run_dir: Path) -> None:
        """The run is over: model.pt, results.json and the plot are written."""

    def on_restore(self, *, records: list[RoundRecord], initial: dict[str, float] | None) -> None:
        """A resumed run's earlier rounds (and its initial evaluation)."""


def notify(listeners: list[RunListener], event: str, console: Console, **kwargs: Any) -> None:
    """Call ``on_<event>(**kwargs)`` on each listener; one that raises is named and removed."""
    for listener in list(listeners):
        method = getattr(listener, f"on_{event}")
        try:
            method(**kwargs)
        except Exception as err:  # a broken viewer must not end the run
            listeners.remove(listener)
            name = type(listener).__name__
            console.print(f"[yellow]warning:[/] {escape(name)} stopped after an error: {escape(repr(err))}")
