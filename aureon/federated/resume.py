"""Start a run fresh or from a checkpoint, and checkpoint it after every round."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord
from flwr.serverapp.strategy import Strategy

from aureon.config import AureonConfig
from aureon.federated.rounds import capture_strategy_state, restore_strategy_state
from aureon.tracking.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    round_record_from_json,
    save_checkpoint,
)
from aureon.tracking.run_tracker import RunTracker

LOG = logging.getLogger(__name__)


def run_identity(config: AureonConfig) -> dict[str, Any]:
    """What must match between a checkpoint and the config that resumes it."""
    return {
        "seed": config.seed,
        "num_clients": config.num_clients,
        "dataset": config.dataset.name,
        "model": config.model._target_,
        "strategy": config.strategy.name,
        "privacy": config.privacy.name,
    }


@dataclass
class RunStart:
    """Where the round loop begins: the round, the global arrays and the experiment's key."""

    first_round: int
    arrays: ArrayRecord
    run_key: str


def begin_run(
    config: AureonConfig, *, strategy: Strategy, tracker: RunTracker, initial_arrays: ArrayRecord
) -> RunStart:
    """A fresh start, or (``config.resume`` set) the state after the checkpoint's last round."""
    if not config.resume:
        return RunStart(first_round=1, arrays=initial_arrays, run_key=uuid.uuid4().hex)
    checkpoint = load_checkpoint(Path(config.resume))
    expected = run_identity(config)
    differs = {k: (checkpoint.identity.get(k), v) for k, v in expected.items() if checkpoint.identity.get(k) != v}
    if differs:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in differs.items())
        raise CheckpointError(f"resume={config.resume!r} was made by a different run ({detail})")
    restore_strategy_state(strategy, checkpoint.strategy_state)
    tracker.rounds = [round_record_from_json(r) for r in checkpoint.rounds]
    tracker.initial = checkpoint.initial
    tracker.started = time.monotonic() - checkpoint.elapsed_seconds
    LOG.warning("resuming %s after round %d", config.resume, checkpoint.round)
    tracker.console.print(f"[bold]resuming[/] {config.resume} after round {checkpoint.round}")
    return RunStart(first_round=checkpoint.round + 1, arrays=checkpoint.array_record(), run_key=checkpoint.run_key)


def checkpoint_round(
    run_dir: Path,
    *,
    config: AureonConfig,
    server_round: int,
    run_key: str,
    arrays: ArrayRecord,
    strategy: Strategy,
    tracker: RunTracker,
) -> None:
    """Save the state after ``server_round`` (called once the round's record is logged)."""
    if not config.deployment.checkpoint:
        return
    save_checkpoint(
        run_dir,
        Checkpoint(
            round=server_round,
            run_key=run_key,
            arrays={name: array.numpy() for name, array in arrays.items()},
            strategy_state=capture_strategy_state(strategy),
            rounds=[r.to_json() for r in tracker.rounds],
            initial=tracker.initial,
            elapsed_seconds=time.monotonic() - tracker.started,
            identity=run_identity(config),
        ),
    )
