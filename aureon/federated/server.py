"""The coordinator: wire the dataset, model, round log and strategy stack to the round loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp import Grid
from torch import nn

from aureon.config import AureonConfig, to_yaml
from aureon.features import prepare_dataset
from aureon.federated.resume import begin_run, checkpoint_round
from aureon.federated.rounds import round_train_config, run_rounds
from aureon.models import build_model
from aureon.privacy.entropy import REPRODUCIBLE_NOISE_WARNING
from aureon.privacy.private_training import grad_sample_mode_record
from aureon.strategies import build_server_strategy
from aureon.tracking import RoundLog, RunTracker
from aureon.training import evaluate_model


def privacy_guarantee(config: AureonConfig) -> dict[str, Any]:
    """Which DP guarantee the run's epsilon figures quote."""
    dp_sgd = config.privacy.dp_sgd()
    if dp_sgd is None:
        return {"kind": "none"}
    guarantee: dict[str, Any] = {
        "kind": "sample-level DP-SGD on each client's data (Opacus)"
        if config.strategy.federated
        else "sample-level DP-SGD on the pooled data (Opacus)",
        "target_epsilon": dp_sgd.target_epsilon,
        "delta": dp_sgd.target_delta,
        "accountant": dp_sgd.accountant,
        "noise": "local entropy on each client",
    }
    if dp_sgd.reproducible_noise:
        guarantee["noise"] = "derived from the run seed (privacy.reproducible_noise=true)"
        guarantee["warning"] = REPRODUCIBLE_NOISE_WARNING
    return guarantee


def new_tracker(config: AureonConfig, run_dir: Path, model: nn.Module) -> RunTracker:
    """The run's tracker; it also warns, before round 1, when the noise is not private.

    ``model`` decides which per-sample gradient path DP-SGD takes, which results.json records.
    """
    tracker = RunTracker(
        run_dir,
        config_yaml=to_yaml(config),
        summary={
            "mode": "federated" if config.strategy.federated else "centralized",
            "strategy": config.strategy.name,
            "dataset": config.dataset.name,
            "num_clients": config.num_clients,
            "num_rounds": config.num_rounds,
            "seed": config.seed,
            "privacy": {**privacy_guarantee(config), **grad_sample_mode_record(config.privacy, model)},
            "secure_aggregation": config.secure_aggregation.name,
            "compression": {
                "upload": config.compression.upload,
                "download": config.compression.download,
                "topk_ratio": config.compression.topk_ratio,
                "error_feedback": config.compression.error_feedback,
            },
        },
        num_rounds=config.num_rounds,
    )
    dp_sgd = config.privacy.dp_sgd()
    if dp_sgd is not None and dp_sgd.reproducible_noise:
        tracker.console.print(f"[bold red]warning:[/] {REPRODUCIBLE_NOISE_WARNING}")
    return tracker


def run_server(grid: Grid, config: AureonConfig, run_dir: Path) -> dict[str, Any]:
    """Run ``config.num_rounds`` rounds over the nodes of ``grid``; return results.json."""
    dataset = prepare_dataset(config.dataset, config.seed, config.features, splits=("test",))
    model = build_model(
        config.model,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        seed=config.seed,
    )
    tracker = new_tracker(config, run_dir, model)
    round_log = RoundLog(tracker)
    server = build_server_strategy(config, round_log=round_log)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        result = evaluate_model(model, dataset.x_test, dataset.y_test, batch_size=config.train.eval_batch_size)
        round_log.evaluated(server_round, test_accuracy=result.accuracy, test_loss=result.loss)
        return MetricRecord({"accuracy": result.accuracy, "loss": result.loss})

    start = begin_run(
        config, strategy=server.strategy, round_log=round_log, initial_arrays=ArrayRecord(model.state_dict())
    )
    final = run_rounds(
        strategy=server.strategy,
        grid=grid,
        arrays=start.arrays,
        first_round=start.first_round,
        num_rounds=config.num_rounds,
        timeout=config.deployment.round_timeout,
        min_train_replies=server.min_train_nodes,
        min_available_nodes=server.min_available_nodes,
        train_config=lambda rnd: round_train_config(
            config.train, server_round=rnd, num_rounds=config.num_rounds, run_key=start.run_key
        ),
        round_log=round_log,
        evaluate_fn=evaluate,
        on_round_end=lambda rnd, arrays: checkpoint_round(
            run_dir,
            config=config,
            server_round=rnd,
            run_key=start.run_key,
            arrays=arrays,
            strategy=server.strategy,
            round_log=round_log,
        ),
    )
    return tracker.finish(final.to_torch_state_dict())
