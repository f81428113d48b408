"""The coordinator's main loop: build the strategy, run the rounds, evaluate, record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
from flwr.serverapp import Grid

from aureon import keys
from aureon.config import AureonConfig, to_yaml
from aureon.features import prepare_dataset
from aureon.federated.resume import begin_run, checkpoint_round
from aureon.federated.rounds import apply_node_limits, run_rounds
from aureon.models import build_model
from aureon.privacy.entropy import REPRODUCIBLE_NOISE_WARNING
from aureon.strategies import (
    RoundLedger,
    RoundRecorder,
    build_strategy,
    with_compression,
    wrap_aggregation,
)
from aureon.tracking import RoundRecord, RunTracker
from aureon.training import evaluate_model


def privacy_guarantee(config: AureonConfig) -> dict[str, Any]:
    """Which DP guarantee the run's epsilon figures quote."""
    privacy = config.privacy
    if not privacy.enabled:
        return {"kind": "none"}
    guarantee: dict[str, Any] = {
        "kind": "sample-level DP-SGD on each client's data (Opacus)"
        if config.strategy.federated
        else "sample-level DP-SGD on the pooled data (Opacus)",
        "target_epsilon": getattr(privacy, "target_epsilon", None),
        "delta": getattr(privacy, "target_delta", None),
        "accountant": getattr(privacy, "accountant", None),
        "noise": "local entropy on each client",
    }
    if getattr(privacy, "reproducible_noise", False):
        guarantee["noise"] = "derived from the run seed (privacy.reproducible_noise=true)"
        guarantee["warning"] = REPRODUCIBLE_NOISE_WARNING
    return guarantee


def new_tracker(config: AureonConfig, run_dir: Path) -> RunTracker:
    """The run's tracker; it also warns, before round 1, when the noise is not private."""
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
            "privacy": privacy_guarantee(config),
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
    if getattr(config.privacy, "reproducible_noise", False):
        tracker.console.print(f"[bold red]warning:[/] {REPRODUCIBLE_NOISE_WARNING}")
    return tracker


def run_server(grid: Grid, config: AureonConfig, run_dir: Path) -> dict[str, Any]:
    """Run ``config.num_rounds`` rounds over the nodes of ``grid``; return results.json."""
    dataset = prepare_dataset(config.dataset, config.seed, config.features)
    model = build_model(
        config.model,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        seed=config.seed,
    )
    tracker = new_tracker(config, run_dir)
    ledger = RoundLedger()
    recorder = RoundRecorder(
        with_compression(
            wrap_aggregation(
                build_strategy(config.strategy, num_clients=config.num_clients),
                validation=config.validation,
                norm_bound=config.norm_bound,
                secure_aggregation=config.secure_aggregation,
                aggregation=config.aggregation,
                ledger=ledger,
                timeout=config.deployment.round_timeout,
                num_rounds=config.num_rounds,
            ),
            config.compression,
            seed=config.seed,
        )
    )

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        result = evaluate_model(model, dataset.x_test, dataset.y_test, batch_size=config.train.eval_batch_size)
        if server_round == 0:
            tracker.log_initial(result.accuracy, result.loss)
        else:
            clients, failures, seconds = recorder.pop_round(server_round)
            record = RoundRecord(
                round=server_round,
                test_accuracy=result.accuracy,
                test_loss=result.loss,
                seconds=seconds,
                clients=clients,
                failures=failures,
            )
            tracker.log_round(ledger.pop(server_round).apply(record))
        return MetricRecord({"accuracy": result.accuracy, "loss": result.loss})

    min_available, min_train = apply_node_limits(recorder, config)
    start = begin_run(config, strategy=recorder, tracker=tracker, initial_arrays=ArrayRecord(model.state_dict()))
    final = run_rounds(
        strategy=recorder,
        grid=grid,
        arrays=start.arrays,
        first_round=start.first_round,
        num_rounds=config.num_rounds,
        timeout=config.deployment.round_timeout,
        min_train_replies=min_train,
        min_available_nodes=min_available,
        train_config=ConfigRecord({keys.SERVER_ROUND: 0, keys.RUN_KEY: start.run_key}),
        evaluate_fn=evaluate,
        on_round_end=lambda rnd, arrays: checkpoint_round(
            run_dir,
            config=config,
            server_round=rnd,
            run_key=start.run_key,
            arrays=arrays,
            strategy=recorder,
            tracker=tracker,
        ),
        on_missing=lambda rnd, node, why: ledger.fail(rnd, node_id=node, reason=why),
        on_abort=ledger.abort,
    )
    return tracker.finish(final.to_torch_state_dict())
