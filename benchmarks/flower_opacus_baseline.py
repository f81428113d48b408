"""AUREON against a plain Flower + Opacus app, on the same federated DP-SGD task.

The plain app does what Flower's Opacus example (examples/opacus in adap/flower)
does, written on the Message API: each round every client builds a fresh
``PrivacyEngine`` with a fixed noise multiplier, trains, and reports the
epsilon of that round alone. Both sides get the same model, MNIST partitions,
rounds, local recipe and noise multiplier (the one AUREON calibrates for
epsilon 2 over the whole run), both run in Flower's Simulation Engine with the
same resources, and both are evaluated on the server on MNIST's test split.

The figures: both accuracies, the epsilon each reports, the epsilon the plain
app's clients really spent (its rounds composed, which is what AUREON reports),
and the wall-time ratio.

    python benchmarks/flower_opacus_baseline.py [--mnist-path PATH]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from opacus import PrivacyEngine
from opacus.accountants import RDPAccountant
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402
    PRESET,
    add_mnist_argument,
    fmt,
    mnist_overrides,
    round_figures,
    run_aureon,
)
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "flower_opacus_baseline"


@dataclass(frozen=True)
class PlainRecipe:
    """Plain values the plain app is built from (read once from AUREON's composed config)."""

    num_clients: int
    num_rounds: int
    batch_size: int
    local_epochs: int
    lr: float
    lr_decay: float  # round r trains at lr * lr_decay ** (r - 1), as AUREON does
    momentum: float
    max_grad_norm: float
    delta: float
    noise_multipliers: tuple[float, ...]  # per partition, as AUREON calibrated them
    sample_rates: tuple[float, ...]


def recipe_from(config: Any) -> PlainRecipe:
    """The recipe and AUREON's calibrated noise multiplier for each partition."""
    from aureon.data import client_indices, load_dataset
    from aureon.privacy import plan_dp

    # partition sizes only: labels, which the features transform leaves alone
    dataset = load_dataset(config.dataset, config.seed)
    plans = [
        plan_dp(
            config.privacy,
            num_examples=len(client_indices(dataset.y_train, config.partition, pid, config.num_clients, config.seed)),
            batch_size=config.train.batch_size,
            local_epochs=config.train.local_epochs,
            num_rounds=config.num_rounds,
        )
        for pid in range(config.num_clients)
    ]
    return PlainRecipe(
        num_clients=config.num_clients,
        num_rounds=config.num_rounds,
        batch_size=config.train.batch_size,
        local_epochs=config.train.local_epochs,
        lr=config.train.lr,
        lr_decay=config.train.lr_decay,
        momentum=config.train.momentum,
        max_grad_norm=config.privacy.max_grad_norm,
        delta=config.privacy.target_delta,
        noise_multipliers=tuple(p.noise_multiplier for p in plans),
        sample_rates=tuple(p.sample_rate for p in plans),
    )


# ------------------------------------------------------------- the plain app
def plain_local_training(
    model: nn.Module, x: np.ndarray, y: np.ndarray, recipe: PlainRecipe, sigma: float, lr: float
) -> float:
    """One round as Flower's example does it: a fresh PrivacyEngine; returns this round's epsilon."""
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=recipe.batch_size,
        shuffle=True,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=recipe.momentum)
    engine = PrivacyEngine(secure_mode=False)
    private_model, optimizer, loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=sigma,
        max_grad_norm=recipe.max_grad_norm,
    )
    criterion = nn.CrossEntropyLoss()
    private_model.train()
    for _ in range(recipe.local_epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            if len(xb) == 0:
                continue
            criterion(private_model(xb), yb).backward()
            optimizer.step()
    return float(engine.get_epsilon(delta=recipe.delta))


def make_plain_client_app(config: Any, recipe: PlainRecipe) -> ClientApp:
    """A ClientApp with one train handler: local DP-SGD, weights and this round's epsilon back."""
    from aureon.data import client_indices
    from aureon.features import prepare_dataset
    from aureon.models import build_model

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        dataset = prepare_dataset(config.dataset, config.seed, config.features)
        idx = client_indices(dataset.y_train, config.partition, pid, recipe.num_clients, config.seed)
        model = build_model(
            config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=config.seed
        )
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        server_round = int(msg.content["config"]["server-round"])
        lr = recipe.lr * recipe.lr_decay ** (server_round - 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            epsilon = plain_local_training(
                model,
                dataset.x_train[idx],
                dataset.y_train[idx],
                recipe,
                recipe.noise_multipliers[pid],
                lr,
            )
        metrics = MetricRecord({"num-examples": len(idx), "epsilon": epsilon})
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
        return Message(content=content, reply_to=msg)

    return app


def make_plain_server_app(config: Any, recipe: PlainRecipe, sink: dict[str, Any]) -> ServerApp:
    """A ServerApp running Flower's FedAvg, evaluating on the server; figures go into ``sink``."""
    from aureon.features import prepare_dataset
    from aureon.models import build_model
    from aureon.training import evaluate_model

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        dataset = prepare_dataset(config.dataset, config.seed, config.features)
        model = build_model(
            config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=config.seed
        )
        ticks = [time.monotonic()]

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            model.load_state_dict(arrays.to_torch_state_dict())
            result = evaluate_model(model, dataset.x_test, dataset.y_test)
            sink.setdefault("accuracy", {})[server_round] = result.accuracy
            now = time.monotonic()
            sink.setdefault("seconds", {})[server_round] = now - ticks[-1]
            ticks.append(now)
            return MetricRecord({"accuracy": result.accuracy})

        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=recipe.num_clients)
        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(model.state_dict()),
            num_rounds=recipe.num_rounds,
            evaluate_fn=evaluate,
        )
        sink["epsilon"] = {rnd: float(m["epsilon"]) for rnd, m in result.train_metrics_clientapp.items()}

    return app


def run_plain(config: Any, recipe: PlainRecipe) -> dict[str, Any]:
    """The plain app in Flower's Simulation Engine, with AUREON's Ray resources."""
    from flwr.simulation import run_simulation

    from aureon.launch.simulation import backend_config, quiet_flower

    quiet_flower(verbose=False)
    sink: dict[str, Any] = {}
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run_simulation(
            server_app=make_plain_server_app(config, recipe, sink),
            client_app=make_plain_client_app(config, recipe),
            num_supernodes=recipe.num_clients,
            backend_config=backend_config(config),
        )
    sink["wall_seconds"] = time.monotonic() - started
    if len(sink.get("epsilon", {})) != recipe.num_rounds:
        raise RuntimeError(f"the plain Flower app did not finish its rounds: {sink}")
    return sink


# ----------------------------------------------------------------- figures
def composed_epsilon(recipe: PlainRecipe, pid: int, rounds: int) -> float:
    """What a client of the plain app has really spent after ``rounds`` rounds (RDP, composed)."""
    accountant = RDPAccountant()
    steps = recipe.local_epochs * math.ceil(1.0 / recipe.sample_rates[pid])
    accountant.history.append((recipe.noise_multipliers[pid], recipe.sample_rates[pid], steps * rounds))
    return float(accountant.get_epsilon(delta=recipe.delta))


def round_rows(aureon: dict[str, Any], plain: dict[str, Any], recipe: PlainRecipe) -> list[dict[str, Any]]:
    """Per round, both apps side by side."""
    rows = []
    for r in round_figures(aureon):
        n = r["round"]
        rows.append(
            {
                "round": n,
                "aureon_accuracy": r["test_accuracy"],
                "aureon_epsilon": r["epsilon"],
                "aureon_seconds": r["seconds"],
                "plain_accuracy": plain["accuracy"][n],
                "plain_reported_epsilon": plain["epsilon"][n],
                "plain_true_epsilon": max(composed_epsilon(recipe, pid, n) for pid in range(recipe.num_clients)),
                "plain_seconds": plain["seconds"][n],
            }
        )
    return rows


def report(rows: list[dict[str, Any]], summary: dict[str, Any], shown: list[str]) -> str:
    """The Markdown page."""
    head = markdown_table(
        ["", "AUREON", "plain Flower + Opacus"],
        [
            ["final test accuracy", fmt(summary["aureon_accuracy"]), fmt(summary["plain_accuracy"])],
            [
                "epsilon reported after the last round",
                fmt(summary["aureon_epsilon"], ".3f"),
                fmt(summary["plain_reported_epsilon"], ".3f"),
            ],
            [
                "epsilon actually spent (RDP, rounds composed)",
                fmt(summary["aureon_epsilon"], ".3f"),
                fmt(summary["plain_true_epsilon"], ".3f"),
            ],
            ["wall seconds", fmt(summary["aureon_wall_seconds"], ".0f"), fmt(summary["plain_wall_seconds"], ".0f")],
        ],
    )
    per_round = markdown_table(
        [
            "round",
            "AUREON acc",
            "AUREON eps",
            "AUREON s",
            "plain acc",
            "plain eps reported",
            "plain eps spent",
            "plain s",
        ],
        [
            [
                r["round"],
                fmt(r["aureon_accuracy"]),
                fmt(r["aureon_epsilon"], ".3f"),
                fmt(r["aureon_seconds"], ".1f"),
                fmt(r["plain_accuracy"]),
                fmt(r["plain_reported_epsilon"], ".3f"),
                fmt(r["plain_true_epsilon"], ".3f"),
                fmt(r["plain_seconds"], ".1f"),
            ]
            for r in rows
        ],
    )
    return (
        "# AUREON vs a plain Flower + Opacus app (fresh PrivacyEngine per round)\n\n"
        f"Config: `{' '.join(shown)}`; noise multiplier "
        f"{summary['noise_multiplier']:.4f} on both sides (AUREON's calibration for the "
        "whole run). Epsilon: sample-level DP-SGD per client, delta "
        f"{summary['delta']:g}. AUREON's is its RDP accountant's, cumulative, max over "
        "clients. The plain app's reported figure is what Flower's example prints: a fresh "
        "engine's (Opacus' default PRV accountant) after one round, averaged over clients "
        "as Flower's FedAvg aggregates metrics; 'spent' composes its rounds with the RDP "
        "accountant, as AUREON does.\n\n"
        f"Wall time AUREON / plain: **{summary['wall_time_ratio']:.2f}x**.\n\n" + head + "\n" + per_round
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mnist_argument(parser)
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args()
    from aureon.launch.run_config import compose_config

    overrides = [PRESET, *mnist_overrides(args.mnist_path), *args.override]
    config = compose_config(overrides)
    recipe = recipe_from(config)
    print("--- plain Flower + Opacus", flush=True)
    plain = run_plain(config, recipe)
    print("--- AUREON", flush=True)
    aureon = run_aureon(overrides)
    rows = round_rows(aureon, plain, recipe)
    last = rows[-1]
    summary = {
        "noise_multiplier": max(recipe.noise_multipliers),
        "delta": recipe.delta,
        "aureon_accuracy": last["aureon_accuracy"],
        "plain_accuracy": last["plain_accuracy"],
        "aureon_epsilon": last["aureon_epsilon"],
        "plain_reported_epsilon": last["plain_reported_epsilon"],
        "plain_true_epsilon": last["plain_true_epsilon"],
        "aureon_wall_seconds": aureon["wall_seconds"],
        "plain_wall_seconds": plain["wall_seconds"],
        "wall_time_ratio": aureon["wall_seconds"] / plain["wall_seconds"],
    }
    shown = [PRESET, "dataset.path=<mnist>", *args.override]
    data = {"config": shown, "machine": machine(), "recipe": recipe.__dict__, "summary": summary, "rounds": rows}
    json_path, md_path = write(NAME, data, report(rows, summary, shown))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
