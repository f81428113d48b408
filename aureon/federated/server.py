"""The coordinator's main loop: build the strategy, run the rounds, evaluate, record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
from flwr.serverapp import Grid

from aureon import keys
from aureon.config import AureonConfig, to_yaml
from aureon.data import load_dataset
from aureon.models import build_model
from aureon.strategies import RoundRecorder, build_strategy
from aureon.tracking import RoundRecord, RunTracker
from aureon.training import evaluate_model


def privacy_guarantee(config: AureonConfig) -> dict[str, Any]:
    """Which DP guarantee the run's epsilon figures quote."""
    privacy = config.privacy
    if not privacy.enabled:
        return {"kind": "none"}
    return {
        "kind": "sample-level DP-SGD on each client's data (Opacus)"
        if config.strategy.federated
        else "sample-level DP-SGD on the pooled data (Opacus)",
        "target_epsilon": getattr(privacy, "target_epsilon", None),
        "delta": getattr(privacy, "target_delta", None),
        "accountant": getattr(privacy, "accountant", None),
    }


def new_tracker(config: AureonConfig, run_dir: Path) -> RunTracker:
    return RunTracker(
        run_dir,
        config_yaml=to_yaml(config),
        summary={
            "mode": "federated" if config.strategy.federated else "centralized",
            "strategy": config.strategy.name,
            "dataset": config.dataset.name,
            "num_clients": config.num_clients,
            "num_rounds": config.num_rounds,
            "seed": config.seed,
            "privacy": privacy_guarantee(config),
        },
        num_rounds=config.num_rounds,
    )


def run_server(grid: Grid, config: AureonConfig, run_dir: Path) -> dict[str, Any]:
    """Run ``config.num_rounds`` rounds over the nodes of ``grid``; return results.json."""
    dataset = load_dataset(config.dataset, config.seed)
    model = build_model(
        config.model,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        seed=config.seed,
    )
    tracker = new_tracker(config, run_dir)
    recorder = RoundRecorder(build_strategy(config.strategy, num_clients=config.num_clients))

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        result = evaluate_model(
            model, dataset.x_test, dataset.y_test, batch_size=config.train.eval_batch_size
        )
        if server_round == 0:
            tracker.log_initial(result.accuracy, result.loss)
        else:
            clients, failures, seconds = recorder.pop_round(server_round)
            tracker.log_round(
                RoundRecord(
                    round=server_round,
                    test_accuracy=result.accuracy,
                    test_loss=result.loss,
                    seconds=seconds,
                    clients=clients,
                    failures=failures,
                )
            )
        return MetricRecord({"accuracy": result.accuracy, "loss": result.loss})

    outcome = recorder.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=config.num_rounds,
        timeout=config.simulation.round_timeout,
        train_config=ConfigRecord({keys.SERVER_ROUND: 0}),
        evaluate_fn=evaluate,
    )
    return tracker.finish(outcome.arrays.to_torch_state_dict())
