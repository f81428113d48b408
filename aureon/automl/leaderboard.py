"""The leaderboard: trials ranked by cross-validated score, live in the terminal and as CSV.

Every trial gets a row, failed and pruned ones included with their reason, so
a search that went wrong can be read from leaderboard.csv alone.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.live import Live
from rich.table import Table

from aureon.automl.objective import ERROR_ATTR, STOP_ATTR

COLUMNS = ("rank", "trial", "family", "state", "cv_score", "cv_std", "fit_seconds", "worker", "reason", "params")


def rows(trials: list[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
    """One dict per trial: completed ones by score (best first), then the rest by trial number."""
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -float(t.value or 0.0))
    rest = sorted((t for t in trials if t.state != TrialState.COMPLETE), key=lambda t: t.number)
    out = []
    for rank, trial in enumerate([*done, *rest], start=1):
        reason = trial.user_attrs.get(ERROR_ATTR) or trial.user_attrs.get(STOP_ATTR) or ""
        if trial.state == TrialState.PRUNED and not reason:
            reason = "pruned: running score below the median of earlier trials"
        out.append(
            {
                "rank": rank if trial.state == TrialState.COMPLETE else "",
                "trial": trial.number,
                "family": trial.params.get("family", trial.user_attrs.get("family", "")),
                "state": trial.state.name.lower(),
                "cv_score": trial.value if trial.state == TrialState.COMPLETE else "",
                "cv_std": trial.user_attrs.get("cv_std", ""),
                "fit_seconds": trial.user_attrs.get("fit_seconds", ""),
                "worker": trial.user_attrs.get("worker", ""),
                "reason": reason,
                "params": json.dumps({k: v for k, v in trial.params.items() if k != "family"}, sort_keys=True),
            }
        )
    return out


def write_csv(trials: list[optuna.trial.FrozenTrial], path: Path) -> Path:
    """leaderboard.csv: ``rows`` with a header."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(trials))
    return path


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def render(trials: list[optuna.trial.FrozenTrial], *, metric: str, top: int, seconds_left: float) -> Table:
    """The top ``top`` completed trials and the counts of the others, as a rich Table."""
    counts = {state: sum(t.state == state for t in trials) for state in (TrialState.PRUNED, TrialState.FAIL)}
    completed = sum(t.state == TrialState.COMPLETE for t in trials)
    table = Table(
        title=f"{completed} done, {counts[TrialState.PRUNED]} pruned, "
        f"{counts[TrialState.FAIL]} failed, {max(seconds_left, 0.0):.0f} s left",
        title_justify="left",
    )
    for name in ("#", "trial", "family", f"CV {metric}", "+/-", "fit s"):
        table.add_column(name, justify="right" if name not in ("family",) else "left")
    for row in rows(trials)[:top]:
        if row["state"] != "complete":
            break
        table.add_row(
            str(row["rank"]),
            str(row["trial"]),
            row["family"],
            _fmt(row["cv_score"]),
            _fmt(row["cv_std"]),
            _fmt(row["fit_seconds"], 2),
        )
    return table


class LiveLeaderboard:
    """A rich Live view refreshed after every trial this process finishes (all workers' trials shown)."""

    def __init__(self, *, metric: str, top: int, deadline: float, enabled: bool) -> None:
        self._metric, self._top, self._deadline = metric, top, deadline
        self._live = Live(Table(), console=Console(), auto_refresh=False) if enabled else None

    def __enter__(self) -> LiveLeaderboard:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, study: optuna.Study, now: float) -> None:
        if self._live is None:
            return
        trials = study.get_trials(deepcopy=False)
        self._live.update(
            render(trials, metric=self._metric, top=self._top, seconds_left=self._deadline - now), refresh=True
        )
