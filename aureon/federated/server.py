"""The coordinator: wire the dataset, model, round log and strategy stack to the round loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp import Grid
from torch import nn

from aureon.config import AureonConfig, to_yaml
from aureon.features import prepare_dataset
from aureon.features.tabular.own_table import per_client_tables
from aureon.federated.resume import begin_run, checkpoint_round
from aureon.federated.rounds import RoundEvaluatedFn, round_train_config, run_rounds
from aureon.models import build_model
from aureon.privacy.entropy import REPRODUCIBLE_NOISE_WARNING
from aureon.privacy.private_training import grad_sample_mode_record
from aureon.strategies import build_server_strategy
from aureon.tracking import RoundLog, RunTracker
from aureon.training import evaluate_model

if TYPE_CHECKING:
    from aureon.features.tabular.pipeline import FittedPipeline


def privacy_guarantee(config: AureonConfig) -> dict[str, Any]:
    """Which DP guarantees the run's epsilon figures quote: sample-level, client-level, or both, each on its own."""
    client_level = config.privacy.client_level()
    sample_level = sample_level_guarantee(config)
    if client_level is None:
        return sample_level or {"kind": "none"}
    from aureon.privacy.client_level import client_level_guarantee

    return {
        "kind": "client-level DP-FedAvg and sample-level DP-SGD (two guarantees, stated separately)"
        if sample_level is not None
        else "client-level DP-FedAvg",
        "client_level": client_level_guarantee(client_level),
        "sample_level": sample_level,
    }


def sample_level_guarantee(config: AureonConfig) -> dict[str, Any] | None:
    """The sample-level DP-SGD guarantee (None: off): each example, against everyone, the coordinator included."""
    dp_sgd = config.privacy.dp_sgd()
    if dp_sgd is None:
        return None
    guarantee: dict[str, Any] = {
        "kind": "sample-level DP-SGD on each client's data (Opacus)"
        if config.strategy.federated
        else "sample-level DP-SGD on the pooled data (Opacus)",
        "target_epsilon": dp_sgd.target_epsilon,
        "delta": dp_sgd.target_delta,
        "accountant": dp_sgd.accountant,
        "noise": "local entropy on each client",
    }
    if config.privacy.client_level() is not None:
        guarantee["protects"] = (
            "each training example, against everyone who sees an update, the coordinator included; "
            "each client adds its own noise"
        )
    if dp_sgd.reproducible_noise:
        guarantee["noise"] = "derived from the run seed (privacy.reproducible_noise=true)"
        guarantee["warning"] = REPRODUCIBLE_NOISE_WARNING
    return guarantee


def _feature_statistics(config: AureonConfig, fitted: FittedPipeline | None = None) -> dict[str, Any]:
    """The feature fit's own guarantee (its statistics' epsilon), beside the training one; {} when none was fitted."""
    if fitted is not None:
        from aureon.features.tabular.prepare import guarantee_of

        return {"feature_statistics": guarantee_of(fitted)}
    entry = config.features.statistics_guarantee(config.dataset, config.seed)
    return {} if entry is None else {"feature_statistics": entry}


def new_tracker(
    config: AureonConfig,
    run_dir: Path,
    model: nn.Module,
    *,
    test_metric: str = "accuracy",
    fitted: FittedPipeline | None = None,
) -> RunTracker:
    """The run's tracker; it also warns, before round 1, when the noise is not private.

    ``model`` decides which per-sample gradient path DP-SGD takes, which results.json records;
    ``test_metric`` names the test score (accuracy, or r2 for regression); ``fitted``: a feature
    pipeline fitted over the Message API (per-client tables), whose guarantee results.json states.
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
            "test_metric": test_metric,
            "privacy": {
                **privacy_guarantee(config),
                **grad_sample_mode_record(config.privacy, model),
                **_feature_statistics(config, fitted),
            },
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
    from aureon.serving.hooks import attach_run_listeners

    attach_run_listeners(tracker, config)
    return tracker


def run_server(
    grid: Grid, config: AureonConfig, run_dir: Path, *, on_round_evaluated: RoundEvaluatedFn | None = None
) -> dict[str, Any]:
    """Run ``config.num_rounds`` rounds over the nodes of ``grid``; return results.json.

    ``on_round_evaluated``: told each round's test figures; a reason it returns stops the run (HPO pruning).
    """
    if per_client_tables(config.dataset):  # the server holds no rows: fit over the clients, score on theirs
        return _run_on_client_tables(grid, config, run_dir, on_round_evaluated=on_round_evaluated)
    dataset = prepare_dataset(config.dataset, config.seed, config.features, splits=("test",))
    model = build_model(
        config.model,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        seed=config.seed,
    )
    objective = dataset.objective()
    tracker = new_tracker(config, run_dir, model, test_metric=objective.metric)
    config.features.save_fitted(config.dataset, config.seed, run_dir)  # a fitted pipeline goes with the model

    def evaluate(server_round: int, arrays: ArrayRecord) -> tuple[float, float]:
        model.load_state_dict(arrays.to_torch_state_dict())
        result = evaluate_model(
            model, dataset.x_test, dataset.y_test, batch_size=config.train.eval_batch_size, objective=objective
        )
        return result.score, result.loss

    return _run(
        grid, config, run_dir, model, tracker, evaluate, metric=objective.metric, on_round_evaluated=on_round_evaluated
    )


def _run_on_client_tables(
    grid: Grid, config: AureonConfig, run_dir: Path, *, on_round_evaluated: RoundEvaluatedFn | None
) -> dict[str, Any]:
    """``dataset.per_client``: the pipeline fitted over the Message API before round 1, the test score the clients'."""
    from aureon.features.tabular.client_evaluation import evaluate_on_clients
    from aureon.features.tabular.deployment import prepare_client_tables
    from aureon.training.objectives import objective_for

    timeout = config.deployment.round_timeout
    minimum = config.deployment.min_available_nodes or config.num_clients
    distribution = prepare_client_tables(grid, config, run_dir, minimum=minimum, timeout=timeout)
    pipeline = distribution.pipeline
    regression = pipeline.target is not None
    objective = objective_for("regression" if regression else "classification")
    num_classes = 1 if regression else len(pipeline.classes or ())
    width = len(pipeline.output_columns())
    model = build_model(config.model, input_shape=(width,), num_classes=num_classes, seed=config.seed)
    tracker = new_tracker(config, run_dir, model, test_metric=objective.metric, fitted=pipeline)

    def evaluate(server_round: int, arrays: ArrayRecord) -> tuple[float, float]:
        scored = evaluate_on_clients(grid, arrays, server_round=server_round, metric=objective.metric, timeout=timeout)
        return scored.score, scored.loss

    return _run(
        grid,
        config,
        run_dir,
        model,
        tracker,
        evaluate,
        metric=objective.metric,
        on_round_evaluated=on_round_evaluated,
        before_round=distribution.before_round,
    )


def _run(
    grid: Grid,
    config: AureonConfig,
    run_dir: Path,
    model: nn.Module,
    tracker: RunTracker,
    score: Callable[[int, ArrayRecord], tuple[float, float]],
    *,
    metric: str,
    on_round_evaluated: RoundEvaluatedFn | None,
    before_round: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The round loop over the strategy stack; ``score`` gives a model's (test score, test loss)."""
    round_log = RoundLog(tracker)
    server = build_server_strategy(config, round_log=round_log)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        test_score, test_loss = score(server_round, arrays)
        round_log.evaluated(server_round, test_accuracy=test_score, test_loss=test_loss)
        return MetricRecord({metric: test_score, "loss": test_loss})

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
        on_round_evaluated=on_round_evaluated,
        before_round=before_round,
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
