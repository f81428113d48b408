"""Start a run fresh or from a checkpoint, and checkpoint it after every round."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord
from flwr.serverapp.strategy import Strategy

from aureon.config import AureonConfig
from aureon.features import SPLITS, prepare_dataset
from aureon.federated.rounds import capture_strategy_state, restore_strategy_state
from aureon.models import build_model
from aureon.strategies.wrapper import strategy_chain
from aureon.tracking.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from aureon.tracking.round_log import RoundLog

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
        **privacy_identity(config),
    }


def privacy_identity(config: AureonConfig) -> dict[str, Any]:
    """The settings that decide how much privacy each round spends, by their config keys.

    A resume that changed any of them would recalibrate the noise mid-run and
    silently raise the budget: raising a budget is a new run.
    """
    privacy = config.privacy
    client_level = privacy.client_level()
    if client_level is None:
        return {
            "num_rounds": config.num_rounds,
            "train.batch_size": config.train.batch_size,
            "train.local_epochs": config.train.local_epochs,
            **{
                f"privacy.{name}": getattr(privacy, name, None)
                for name in ("target_epsilon", "target_delta", "max_grad_norm", "accountant", "reproducible_noise")
            },
        }
    # Client-level DP keeps the noise it released with (the checkpoint's rounds) and stops at
    # its budget, so more rounds may be asked for; what each round costs may not change.
    identity: dict[str, Any] = {
        "strategy.fraction_train": config.strategy.fraction_train,
        **{
            f"privacy.{name}": getattr(client_level, name)
            for name in ("target_epsilon", "target_delta", "clipping", "clip_on", "clipped_count_stddev")
        },
    }
    sample_level = privacy.dp_sgd()
    if sample_level is not None:
        identity.update(
            {
                "num_rounds": config.num_rounds,
                "train.batch_size": config.train.batch_size,
                "train.local_epochs": config.train.local_epochs,
                **{
                    f"privacy.sample_level.{name}": getattr(sample_level, name)
                    for name in ("target_epsilon", "target_delta", "max_grad_norm", "accountant", "reproducible_noise")
                },
            }
        )
    return identity


def check_resumable(checkpoint: Checkpoint, config: AureonConfig) -> None:
    """Refuse a resume by a different run, or one that changes what privacy each round spends."""
    expected = run_identity(config)
    differs = {k: (checkpoint.identity.get(k), v) for k, v in expected.items() if checkpoint.identity.get(k) != v}
    if not differs:
        return
    detail = ", ".join(f"{k} (checkpoint {a!r}, now {b!r})" for k, (a, b) in differs.items())
    if set(differs) <= set(privacy_identity(config)):
        raise CheckpointError(
            f"resume={config.resume!r} would change the privacy settings of the run: {detail}; "
            "a different budget or noise level is a new run"
        )
    raise CheckpointError(f"resume={config.resume!r} was made by a different run: {detail}")


@dataclass
class RunStart:
    """Where the round loop begins: the round, the global arrays and the experiment's key."""

    first_round: int
    arrays: ArrayRecord
    run_key: str


def _check_fits(run_dir: Path, checkpoint: Checkpoint, model_arrays: ArrayRecord) -> None:
    """The checkpoint holds exactly the configured model's arrays, shape for shape."""
    expected = {name: tuple(array.shape) for name, array in model_arrays.items()}
    found = {name: tuple(array.shape) for name, array in checkpoint.arrays.items()}
    if expected == found:
        return
    wrong = sorted(set(expected) ^ set(found)) or sorted(n for n in expected if expected[n] != found[n])
    shown = ", ".join(
        f"{name} {found.get(name, 'missing')} vs model {expected.get(name, 'absent')}" for name in wrong[:3]
    )
    more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
    raise CheckpointError(
        f"checkpoint {checkpoint_path(run_dir)}: its arrays do not fit the configured model ({shown}{more})"
    )


def check_resume(config: AureonConfig, model_arrays: ArrayRecord | None = None) -> Checkpoint | None:
    """The checkpoint ``config.resume`` names (None when not resuming), read and matched to the config.

    Entry points call this before starting Flower, so a damaged or foreign
    checkpoint is reported as one line instead of failing inside the ServerApp.
    With ``model_arrays`` (the configured model's), the stored arrays must match them.
    """
    if not config.resume:
        return None
    checkpoint = load_checkpoint(Path(config.resume))
    check_resumable(checkpoint, config)
    if model_arrays is not None:
        _check_fits(Path(config.resume), checkpoint, model_arrays)
    return checkpoint


def preflight(config: AureonConfig) -> None:
    """Read the run's input files (dataset, checkpoint) before Flower starts.

    Inside the Simulation Engine a bad file fails in a ServerApp thread or a
    Ray worker, far from the command line; here it is one clear error. A cold
    feature cache is filled here, once, before the clients need it; the ServerApp
    reads only the test split.
    """
    dataset = prepare_dataset(config.dataset, config.seed, config.features, splits=("test",), ensure=SPLITS)
    if config.resume:
        model = build_model(
            config.model,
            input_shape=dataset.input_shape,
            num_classes=dataset.num_classes,
            seed=config.seed,
        )
        check_resume(config, ArrayRecord(model.state_dict()))


def begin_run(
    config: AureonConfig, *, strategy: Strategy, round_log: RoundLog, initial_arrays: ArrayRecord
) -> RunStart:
    """A fresh start, or (``config.resume`` set) the state after the checkpoint's last round."""
    checkpoint = check_resume(config, initial_arrays)
    if checkpoint is None:
        return RunStart(first_round=1, arrays=initial_arrays, run_key=uuid.uuid4().hex)
    restore_strategy_state(strategy, checkpoint.strategy_state)
    round_log.restore(checkpoint, source=str(config.resume))
    for part in strategy_chain(strategy):  # wrappers whose state lives in the round records (client-level DP)
        restore_rounds = getattr(part, "restore_rounds", None)
        if callable(restore_rounds):
            restore_rounds(checkpoint.rounds)
    LOG.warning("resuming %s after round %d", config.resume, checkpoint.round)
    return RunStart(first_round=checkpoint.round + 1, arrays=checkpoint.array_record(), run_key=checkpoint.run_key)


def checkpoint_round(
    run_dir: Path,
    *,
    config: AureonConfig,
    server_round: int,
    run_key: str,
    arrays: ArrayRecord,
    strategy: Strategy,
    round_log: RoundLog,
) -> None:
    """Save the state after ``server_round``, its round record included."""
    if not config.deployment.checkpoint:
        return
    save_checkpoint(
        run_dir,
        round_log.to_checkpoint(
            server_round=server_round,
            run_key=run_key,
            arrays={name: array.numpy() for name, array in arrays.items()},
            strategy_state=capture_strategy_state(strategy),
            identity=run_identity(config),
        ),
    )
