"""Plain Flower apps, written as a Flower user writes them, to run beside AUREON's.

``quickstart_client_app`` follows Flower's quickstart: it reads ``lr`` from the
train config, trains with plain torch and replies with ``train_loss`` (or the
name it is given) and ``num-examples``, nothing else. It trains the federation's architecture (AUREON's SmallCNN on
8x8 digits) so that its weights can be averaged with AUREON's clients'.
``fedavg_server_app`` is a ServerApp around Flower's own FedAvg that scores the
global model on the digits test split after every round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, Strategy
from torch import nn

from aureon.config import AureonConfig
from aureon.features import prepare_dataset
from aureon.models import build_model
from aureon.training import evaluate_model

DIGITS_SHAPE, DIGITS_CLASSES = (1, 8, 8), 10


def digits_net(config: AureonConfig) -> nn.Module:
    return build_model(config.model, input_shape=DIGITS_SHAPE, num_classes=DIGITS_CLASSES, seed=config.seed)


def quickstart_client_app(config: AureonConfig, *, loss_key: str = "train_loss") -> ClientApp:
    """A quickstart-style Flower ClientApp (no AUREON handler): its own data, loop and metric names."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        from sklearn.datasets import load_digits

        lr = float(msg.content["config"]["lr"])
        model = digits_net(config)
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        digits = load_digits()
        pid, parts = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
        x = torch.tensor(digits.images[pid::parts][:600, None] / 16.0, dtype=torch.float32)
        x = (x - x.mean()) / x.std()
        y = torch.tensor(digits.target[pid::parts][:600])
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        model.train()
        losses = []
        for start in range(0, len(y), 32):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[start : start + 32]), y[start : start + 32])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        metrics = MetricRecord({loss_key: float(np.mean(losses)), "num-examples": len(y)})
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
        return Message(content=content, reply_to=msg)

    return app


@dataclass
class FlowerRun:
    """What a test's ServerApp saw: test accuracy after each round (0 = initial), replies per round."""

    accuracy: list[float] = field(default_factory=list)
    replies: dict[int, int] = field(default_factory=dict)
    failures: dict[int, list[str]] = field(default_factory=dict)
    client_evaluation: dict[int, dict[str, float]] = field(default_factory=dict)


class Watched(FedAvg):
    """Flower's FedAvg, unchanged, that also notes how many replies each round brought and why any failed."""

    def __init__(self, run: FlowerRun, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run = run

    def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def]
        replies = list(replies)
        self.run.replies[server_round] = sum(not r.has_error() for r in replies)
        self.run.failures[server_round] = [r.error.reason for r in replies if r.has_error()]
        return super().aggregate_train(server_round, replies)


def fedavg_server_app(
    config: AureonConfig,
    run: FlowerRun,
    *,
    num_rounds: int,
    train_config: dict[str, int | float | str],
    wrap: Callable[[FedAvg], Strategy] = lambda strategy: strategy,
    num_nodes: int = 2,
    fraction_evaluate: float = 0.0,
) -> ServerApp:
    """A Flower ServerApp: FedAvg (optionally wrapped) over ``num_nodes`` nodes, scored centrally."""
    app = ServerApp()
    data = prepare_dataset(config.dataset, config.seed, config.features)

    def score(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model = digits_net(config)
        model.load_state_dict(arrays.to_torch_state_dict())
        run.accuracy.append(evaluate_model(model, data.x_test, data.y_test).accuracy)
        return MetricRecord({"accuracy": run.accuracy[-1]})

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = Watched(
            run,
            fraction_evaluate=fraction_evaluate,
            min_available_nodes=num_nodes,
            min_train_nodes=num_nodes,
            min_evaluate_nodes=num_nodes,
        )
        result = wrap(strategy).start(
            grid=grid,
            initial_arrays=ArrayRecord(digits_net(config).state_dict()),
            train_config=ConfigRecord(train_config),
            num_rounds=num_rounds,
            evaluate_fn=score,
        )
        run.client_evaluation = {r: dict(m) for r, m in result.evaluate_metrics_clientapp.items()}

    return app
