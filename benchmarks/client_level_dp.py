"""Client-level DP (DP-FedAvg) at scale: AUREON against Flower's DP wrapper used bare.

1,000 clients over full MNIST (Dirichlet alpha 0.5), 100 sampled per round, 20
rounds, client-level epsilon 8 at delta 1e-5, scattering features and a linear
model. AUREON runs ``privacy=client_level`` (Flower's server-side fixed-clipping
wrapper inside its stack: uniform weights, the budget, epsilon per round). The
peer is a plain Flower ServerApp/ClientApp: FedAvg wrapped in
``DifferentialPrivacyServerSideFixedClipping`` with the same noise multiplier,
clipping norm, partitions, model, local recipe and rounds, in Flower's
Simulation Engine with the same resources. Figures: both accuracies, wall-time ratio.

    python benchmarks/client_level_dp.py [--mnist-path PATH] [--override KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import add_mnist_argument, fmt, mnist_overrides, run_aureon  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "client_level_dp"
TASK = [
    "features=scattering",
    "model=feature_linear",
    "partition=dirichlet",
    "partition.alpha=0.5",
    "num_clients=1000",
    "num_rounds=20",
    "strategy.fraction_train=0.1",
    "privacy=client_level",
    "privacy.target_epsilon=8",
    "privacy.target_delta=1e-5",
    "privacy.clipping_norm=1.0",
    "train.local_epochs=1",
    "train.batch_size=32",
    "train.lr=0.5",
    "train.lr_decay=0.95",
    "train.momentum=0.5",
]


def plain_local_training(model: nn.Module, x: np.ndarray, y: np.ndarray, config: Any, lr: float) -> None:
    """The local recipe of AUREON's config, as a plain Flower client would write it (no DP-SGD)."""
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=config.train.batch_size, shuffle=True
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.train.momentum)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(config.train.local_epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()


def make_plain_client_app(config: Any) -> ClientApp:
    from aureon.data import client_indices
    from aureon.features import prepare_dataset
    from aureon.models import build_model

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        dataset = prepare_dataset(config.dataset, config.seed, config.features)
        idx = client_indices(dataset.y_train, config.partition, pid, config.num_clients, config.seed)
        model = build_model(
            config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=config.seed
        )
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        server_round = int(msg.content["config"]["server-round"])
        lr = config.train.lr * config.train.lr_decay ** (server_round - 1)
        plain_local_training(model, dataset.x_train[idx], dataset.y_train[idx], config, lr)
        metrics = MetricRecord({"num-examples": len(idx)})
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
        return Message(content=content, reply_to=msg)

    return app


def make_plain_server_app(config: Any, *, noise_multiplier: float, sink: dict[str, Any]) -> ServerApp:
    from aureon.features import prepare_dataset
    from aureon.models import build_model
    from aureon.training import evaluate_model

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        dataset = prepare_dataset(config.dataset, config.seed, config.features, splits=("test",))
        model = build_model(
            config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=config.seed
        )

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            model.load_state_dict(arrays.to_torch_state_dict())
            result = evaluate_model(model, dataset.x_test, dataset.y_test)
            sink.setdefault("accuracy", {})[server_round] = result.accuracy
            return MetricRecord({"accuracy": result.accuracy})

        sampled = int(config.num_clients * config.strategy.fraction_train)
        fedavg = FedAvg(
            fraction_train=config.strategy.fraction_train,
            fraction_evaluate=0.0,
            min_available_nodes=config.num_clients,
        )
        strategy = DifferentialPrivacyServerSideFixedClipping(
            fedavg, noise_multiplier, config.privacy.clipping_norm, sampled
        )
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(model.state_dict()),
            num_rounds=config.num_rounds,
            evaluate_fn=evaluate,
        )

    return app


def run_plain(config: Any, noise_multiplier: float) -> dict[str, Any]:
    from flwr.simulation import run_simulation

    from aureon.launch.simulation import backend_config, quiet_flower

    quiet_flower(verbose=False)
    sink: dict[str, Any] = {}
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run_simulation(
            server_app=make_plain_server_app(config, noise_multiplier=noise_multiplier, sink=sink),
            client_app=make_plain_client_app(config),
            num_supernodes=config.num_clients,
            backend_config=backend_config(config),
        )
    sink["wall_seconds"] = time.monotonic() - started
    if len(sink.get("accuracy", {})) != config.num_rounds + 1:
        raise RuntimeError(f"the plain Flower app did not finish its rounds: {sorted(sink.get('accuracy', {}))}")
    return sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mnist_argument(parser)
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args()
    from aureon.config import sampled_clients
    from aureon.launch.run_config import compose_config
    from aureon.privacy.client_level import plan_client_level

    overrides = [*mnist_overrides(args.mnist_path), *TASK, *args.override]
    config = compose_config(overrides)
    client_level = config.privacy.client_level()
    if client_level is None:
        raise SystemExit("this benchmark needs privacy=client_level")
    plan = plan_client_level(
        client_level, num_clients=config.num_clients, num_sampled=sampled_clients(config), num_rounds=config.num_rounds
    )
    print(f"--- AUREON (noise multiplier {plan.noise_multiplier:.4f})", flush=True)
    aureon = run_aureon(overrides)
    print("--- Flower's DifferentialPrivacyServerSideFixedClipping, bare", flush=True)
    plain = run_plain(config, plan.noise_multiplier)
    last = aureon["rounds"][-1]
    summary = {
        "noise_multiplier": plan.noise_multiplier,
        "sample_rate": plan.sample_rate,
        "aureon_accuracy": last["test_accuracy"],
        "aureon_client_epsilon": last["client_level"]["epsilon"],
        "plain_accuracy": plain["accuracy"][config.num_rounds],
        "aureon_wall_seconds": aureon["wall_seconds"],
        "plain_wall_seconds": plain["wall_seconds"],
        "wall_time_ratio": aureon["wall_seconds"] / plain["wall_seconds"],
        "target_accuracy": 0.85,
    }
    rows = [
        {
            "round": r["round"],
            "aureon_accuracy": r["test_accuracy"],
            "aureon_client_epsilon": r["client_level"]["epsilon"],
            "plain_accuracy": plain["accuracy"][r["round"]],
        }
        for r in aureon["rounds"]
    ]
    shown = ["dataset=mnist", "dataset.path=<mnist>", *TASK, *args.override]
    page = (
        "# Client-level DP (DP-FedAvg): AUREON vs Flower's DP wrapper used bare\n\n"
        f"Config: `{' '.join(shown)}`; noise multiplier {plan.noise_multiplier:.4f} "
        f"(calibrated for epsilon {client_level.target_epsilon:g} at delta {client_level.target_delta:g}, "
        f"q = {plan.sample_rate:g}, {config.num_rounds} rounds) on both sides. The bare wrapper "
        "weighs clients by their example counts (FedAvg's default) and accounts nothing.\n\n"
        f"Wall time AUREON / bare Flower: **{summary['wall_time_ratio']:.2f}x**.\n\n"
        + markdown_table(
            ["", "AUREON", "Flower bare"],
            [
                ["final test accuracy", fmt(summary["aureon_accuracy"]), fmt(summary["plain_accuracy"])],
                ["client-level epsilon reported", fmt(summary["aureon_client_epsilon"], ".3f"), "-"],
                [
                    "wall seconds",
                    fmt(summary["aureon_wall_seconds"], ".0f"),
                    fmt(summary["plain_wall_seconds"], ".0f"),
                ],
            ],
        )
        + "\n"
        + markdown_table(
            ["round", "AUREON acc", "AUREON client eps", "bare acc"],
            [
                [
                    r["round"],
                    fmt(r["aureon_accuracy"]),
                    fmt(r["aureon_client_epsilon"], ".3f"),
                    fmt(r["plain_accuracy"]),
                ]
                for r in rows
            ],
        )
    )
    data = {"config": shown, "machine": machine(), "summary": summary, "rounds": rows}
    json_path, md_path = write(NAME, data, page, redact={str(Path(args.mnist_path).resolve()): "<mnist>"})
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
