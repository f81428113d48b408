"""A run directory: resolved config, results.json, TensorBoard events, plot and model."""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape

from aureon.files import atomic_write_bytes, atomic_write_text
from aureon.tracking.listeners import RunListener, notify
from aureon.tracking.plot import plot_rounds
from aureon.tracking.records import RoundRecord, privacy_statement

NON_FINITE_KEY = "non_finite_fields"


def _finite(value: Any, where: str, found: list[str]) -> Any:
    """``value`` with every NaN/Inf float replaced by None; their paths are appended to ``found``."""
    if isinstance(value, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        found.append(where)
        return None
    return value


def finite_json_document(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` as strict JSON allows: NaN and Inf become null, listed under ``non_finite_fields``.

    A diverged run (lr too high, a poisoned update) produces NaN losses;
    Python would write them as the bare word NaN, which JSON parsers reject.
    """
    found: list[str] = []
    document = _finite(results, "", found)
    if found:
        document[NON_FINITE_KEY] = found
    return document


class RunTracker:
    """Writes a run's outputs as rounds complete; results.json is rewritten each round."""

    def __init__(
        self,
        run_dir: Path,
        *,
        config_yaml: str,
        summary: dict[str, Any],
        num_rounds: int,
        console: Console | None = None,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.yaml", config_yaml)
        self.summary = dict(summary)
        self.num_rounds = num_rounds
        self.rounds: list[RoundRecord] = []
        self.initial: dict[str, float] | None = None
        self.started = time.monotonic()
        self.console = console or Console(highlight=False)
        self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        self.listeners: list[RunListener] = []  # the dashboard, MLflow: told of every round
        self.stop_reason: str | None = None  # why the run ended before its last round

    @property
    def elapsed_seconds(self) -> float:
        """Seconds the run has taken, across resumes."""
        return time.monotonic() - self.started

    def restore(
        self, *, rounds: list[RoundRecord], initial: dict[str, float] | None, elapsed_seconds: float, note: str
    ) -> None:
        """Continue a run that had written ``rounds`` in ``elapsed_seconds``; ``note`` says so on the console."""
        self.rounds = list(rounds)
        self.initial = initial
        self.started = time.monotonic() - elapsed_seconds
        self.console.print(f"[bold]{escape(note)}[/]")
        notify(self.listeners, "restore", self.console, records=self.rounds, initial=initial)

    @property
    def score_label(self) -> str:
        """The test score's name on the terminal: acc, or R^2 for a regression run (summary's test_metric)."""
        metric = self.summary.get("test_metric", "accuracy")
        return "acc" if metric == "accuracy" else "R^2" if metric == "r2" else str(metric)

    # ------------------------------------------------------------------ rounds
    def log_initial(self, accuracy: float, loss: float) -> None:
        self.initial = {"test_accuracy": accuracy, "test_loss": loss}
        self.writer.add_scalar("test/accuracy", accuracy, 0)
        self.writer.add_scalar("test/loss", loss, 0)
        self.console.print(
            f"[bold]round {0:>3}/{self.num_rounds}[/]  {self.score_label} {accuracy:.4f}  loss {loss:.4f}"
            "  (initial model)",
            soft_wrap=True,
        )
        self._write_results()
        notify(self.listeners, "initial", self.console, accuracy=accuracy, loss=loss)

    def log_round(self, record: RoundRecord) -> None:
        self.rounds.append(record)
        step = record.round
        self.writer.add_scalar("test/accuracy", record.test_accuracy, step)
        self.writer.add_scalar("test/loss", record.test_loss, step)
        self.writer.add_scalar("round/seconds", record.seconds, step)
        self.writer.add_scalar("wire/bytes_up", record.bytes_up, step)
        self.writer.add_scalar("wire/bytes_down", record.bytes_down, step)
        self.writer.add_scalar("round/failures", len(record.failures), step)
        self.writer.add_scalar("round/rejected", len(record.rejected), step)
        if record.epsilon_max is not None:
            self.writer.add_scalar("privacy/epsilon_max", record.epsilon_max, step)
        for phase, seconds in record.phases.items():
            self.writer.add_scalar(f"phase/{phase}", seconds, step)
        self.writer.flush()
        eps = f"{record.epsilon_max:.3f}" if record.epsilon_max is not None else "  -  "
        if record.client_level is not None:
            eps += f"  client-eps {record.client_level['epsilon']:.3f}"
            self.writer.add_scalar("privacy/client_level_epsilon", record.client_level["epsilon"], step)
        failed = f"  [red]{len(record.failures)} failed[/]" if record.failures else ""
        if record.rejected:
            failed += f"  [yellow]{len(record.rejected)} rejected[/]"
        if record.aggregation_error:
            failed += "  [red]not aggregated: model kept[/]"
        self.console.print(
            f"[bold]round {step:>3}/{self.num_rounds}[/]  {self.score_label} {record.test_accuracy:.4f}"
            f"  loss {record.test_loss:.4f}  eps {eps}"
            f"  up {record.bytes_up / 1e6:7.3f} MB  down {record.bytes_down / 1e6:7.3f} MB"
            f"  {record.seconds:6.1f} s  clients {len(record.clients)}{failed}",
            soft_wrap=True,
        )
        self._write_results()
        notify(self.listeners, "round", self.console, record=record)

    def stop(self, reason: str) -> None:
        """The run ends before its last round; results.json will say ``finished: false`` with ``reason``."""
        self.stop_reason = reason
        self.console.print(f"[bold red]stopped:[/] {escape(reason)}", soft_wrap=True)

    # ------------------------------------------------------------------ finish
    def finish(self, state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Save the final model and plot; return the results written to results.json.

        A run whose every round was aborted made no aggregate: it is written
        ``finished: false`` with the ``reason``, though the loop ran to its end.
        """
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        atomic_write_bytes(self.run_dir / "model.pt", buffer.getvalue())
        self.summary["model_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
        reason = self.stop_reason or self.unfinished_reason()
        if reason is not None and self.stop_reason is None:
            self.console.print(f"[bold red]run not finished:[/] {escape(reason)}", soft_wrap=True)
        results = self._write_results(finished=reason is None, reason=reason)
        if self.rounds:
            plot_rounds(self.rounds, self.run_dir / "progress.png", initial=self.initial)
        self.writer.close()
        notify(self.listeners, "finish", self.console, results=results, run_dir=self.run_dir)
        return results

    def unfinished_reason(self) -> str | None:
        """Why a run that ran all its rounds still did not finish (every round aborted), or None."""
        if not self.rounds or any(r.aggregation_error is None for r in self.rounds):
            return None
        first = self.rounds[0]
        return (
            f"every round ({len(self.rounds)}) was aborted, so no aggregate was made and the model is "
            f"the initial one; round {first.round}: {first.aggregation_error}"
        )

    def results(self, *, finished: bool = False, reason: str | None = None) -> dict[str, Any]:
        """The results.json document; the privacy block states only a guarantee every aggregated client kept."""
        last = self.rounds[-1] if self.rounds else None
        summary = dict(self.summary)
        if isinstance(summary.get("privacy"), dict):
            summary["privacy"] = privacy_statement(summary["privacy"], self.rounds)
        return {
            **summary,
            "finished": finished,
            **({} if reason is None else {"reason": reason}),
            "rounds_completed": len(self.rounds),
            "rounds_aborted": [r.round for r in self.rounds if r.aggregation_error is not None],
            "total_seconds": self.elapsed_seconds,
            "initial": self.initial,
            "final": None
            if last is None
            else {
                "round": last.round,
                "test_accuracy": last.test_accuracy,
                "test_loss": last.test_loss,
                "epsilon_max": last.epsilon_max,
                "bytes_up_total": sum(r.bytes_up for r in self.rounds),
                "bytes_down_total": sum(r.bytes_down for r in self.rounds),
            },
            "rounds": [r.to_json() for r in self.rounds],
        }

    def _write_results(self, *, finished: bool = False, reason: str | None = None) -> dict[str, Any]:
        """Rewrite results.json (atomically, strict JSON); return the document written."""
        results = finite_json_document(self.results(finished=finished, reason=reason))
        atomic_write_text(self.run_dir / "results.json", json.dumps(results, indent=2, allow_nan=False))
        return results
