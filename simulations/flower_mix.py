"""AUREON's apps beside plain Flower apps, in Flower's Simulation Engine (offline digits, 2 supernodes).

    python -m simulations.flower_mix aureon-clients   # AUREON's DP ClientApp under a Flower FedAvg ServerApp
    python -m simulations.flower_mix flower-clients   # a quickstart-style Flower ClientApp under AUREON's ServerApp
    python -m simulations.flower_mix mixed            # one of each, under AUREON's ServerApp
    python -m simulations.flower_mix mixed --server flower   # one of each, under Flower's FedAvg

Options: ``--rounds N`` (default 3), ``--privacy none|dp_sgd`` for AUREON's
side (default: dp_sgd for aureon-clients, none otherwise: under dp_sgd
AUREON's server rejects replies without an epsilon, privacy.require_client_dp),
``--out DIR`` (default outputs/flower_mix/<mode>-<time>: results.json when
AUREON's server runs, the AUREON clients' privacy ledgers).

The Flower side is written as a Flower user writes it: ``flwr.simulation.run_simulation``,
Flower's ``FedAvg.start`` with the customary train config (``lr``, ``local-epochs``,
``num-rounds``), and a ClientApp with its own data loading and torch loop. It
trains the federation's model (AUREON's SmallCNN for 8x8 digits), as any
client whose weights are averaged with others' must.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aureon.cli import run_cli
from aureon.exceptions import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from torch import nn

    from aureon.config import AureonConfig

MODES = ("aureon-clients", "flower-clients", "mixed")
BATCH = 32
LR = 0.05


def federation_overrides(*, privacy: str, rounds: int) -> list[str]:
    """The AUREON config every app of the federation is built from."""
    return [
        "dataset=digits",
        "model=cnn",  # a CNN on pixels: the plain Flower client trains the same model
        "features=none",
        "num_clients=2",
        f"num_rounds={rounds}",
        f"privacy={privacy}",
        # one recipe for both kinds of client (the defaults are tuned for the default linear model)
        f"train.batch_size={BATCH}",
        f"train.lr={LR}",
        "train.lr_decay=1.0",
        "train.momentum=0.9",
        "train.local_epochs=1",
    ]


def digits_split(config: AureonConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits in [0, 1], split as the federation's config splits them (no test image is trained on)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype("float32")[:, None] / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=config.dataset.test_fraction, random_state=config.seed, stratify=digits.target
    )
    return x_train, x_test, y_train, y_test


def federation_model(config: AureonConfig) -> nn.Module:
    from aureon.models import build_model

    return build_model(config.model, input_shape=(1, 8, 8), num_classes=10, seed=config.seed)


def flower_client_app(config: AureonConfig, *, loss_key: str) -> ClientApp:
    """A quickstart-style Flower ClientApp: reads ``lr``, ``local-epochs``; replies ``loss_key``, ``num-examples``."""
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        train_config = msg.content.config_records["config"]
        lr, epochs = float(cast(float, train_config["lr"])), int(cast(int, train_config.get("local-epochs", 1)))
        pid, parts = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
        x_train, _, y_train, _ = digits_split(config)
        x, y = torch.tensor(x_train[pid::parts]), torch.tensor(y_train[pid::parts])
        model = federation_model(config)
        model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        model.train()
        losses = []
        for _ in range(epochs):
            for order in torch.randperm(len(y)).split(BATCH):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[order]), y[order])
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        metrics = MetricRecord({loss_key: sum(losses) / len(losses), "num-examples": len(y)})
        return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}), reply_to=msg)

    return app


def one_of_each(aureon_app: ClientApp, flower_app: ClientApp) -> ClientApp:
    """A ClientApp that is AUREON's on node partition 0 and the plain Flower one on the others."""
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp

    app = ClientApp()

    def pick(context: Context) -> ClientApp:
        return aureon_app if int(context.node_config["partition-id"]) == 0 else flower_app

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return pick(context)(msg, context)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return pick(context)(msg, context)

    return app


def flower_server_app(config: AureonConfig, *, rounds: int, accuracy: list[float]) -> ServerApp:
    """Flower's FedAvg, unchanged, over 2 nodes; the global model is scored on the test split each round."""
    import torch
    from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    app = ServerApp()
    _, x_test, _, y_test = digits_split(config)

    def score(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model = federation_model(config)
        model.load_state_dict(arrays.to_torch_state_dict())
        model.eval()
        with torch.no_grad():
            predicted = model(torch.tensor(x_test)).argmax(dim=1).numpy()
        accuracy.append(float((predicted == y_test).mean()))
        print(f"flower server  round {server_round}/{rounds}  accuracy {accuracy[-1]:.4f}", flush=True)
        return MetricRecord({"accuracy": accuracy[-1]})

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(fraction_evaluate=0.0, min_available_nodes=2, min_train_nodes=2)
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(federation_model(config).state_dict()),
            train_config=ConfigRecord({"lr": LR, "local-epochs": 1, "num-rounds": rounds}),
            num_rounds=rounds,
            evaluate_fn=score,
        )

    return app


def aureon_summary(results: dict[str, Any]) -> str:
    """Two lines from AUREON's results.json: accuracy, who took part, the guarantee stated."""
    rounds = results["rounds"]
    taken = [len(r["clients"]) - len(r["rejected"]) for r in rounds] if rounds else []
    privacy = results["privacy"]
    guarantee = privacy["kind"]
    if privacy.get("clients_without_guarantee"):
        guarantee += f" (no guarantee from nodes {[c['node_id'] for c in privacy['clients_without_guarantee']]})"
    status = "finished" if results["finished"] else f"not finished: {results.get('reason')}"
    return (
        f"aureon server  accuracy {results['initial']['test_accuracy']:.4f} -> {rounds[-1]['test_accuracy']:.4f}"
        f"  replies aggregated per round {taken}  rejected {[len(r['rejected']) for r in rounds]}\n"
        f"aureon server  {status}; privacy: {guarantee}"
    )


def run(mode: str, *, rounds: int, privacy: str, server: str, out: Path) -> int:
    """Run one combination; 0 when every round produced a new global model."""
    from flwr.simulation import run_simulation

    import aureon
    from aureon.launch.run_config import compose_config
    from aureon.launch.simulation import backend_config, quiet_flower

    overrides = federation_overrides(privacy=privacy, rounds=rounds)
    config = compose_config(overrides)
    # Flower's FedAvg needs every reply to carry the same metric names: the plain client then uses
    # Flower's hyphenated train-loss, as AUREON's does; under AUREON's server any names pass.
    flower_clients = server == "flower" and mode == "mixed"
    plain = flower_client_app(config, loss_key="train-loss" if flower_clients else "train_loss")
    aureon_clients = aureon.client_app(overrides, state_dir=out / "clients")
    client_app = {
        "aureon-clients": aureon_clients,
        "flower-clients": plain,
        "mixed": one_of_each(aureon_clients, plain),
    }[mode]
    accuracy: list[float] = []
    on_flower = mode == "aureon-clients" or flower_clients
    server_app = (
        flower_server_app(config, rounds=rounds, accuracy=accuracy)
        if on_flower
        else aureon.server_app(config, run_dir=out)
    )
    quiet_flower(verbose=False)
    print(f"{mode}: {'Flower FedAvg' if on_flower else 'AUREON'} ServerApp, privacy={privacy}, out={out}", flush=True)
    run_simulation(
        server_app=server_app, client_app=client_app, num_supernodes=2, backend_config=backend_config(config)
    )
    if on_flower:
        done = len(accuracy) == rounds + 1
        print(f"flower server  accuracy {accuracy[0]:.4f} -> {accuracy[-1]:.4f} over {len(accuracy) - 1} rounds")
        return 0 if done else 1
    results = json.loads((out / "results.json").read_text())
    print(aureon_summary(results))
    return 0 if results["finished"] and not results["rounds_aborted"] else 1


def command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulations.flower_mix",
        description="Run AUREON's apps beside plain Flower apps (digits, 2 supernodes, Simulation Engine).",
    )
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--privacy", choices=("none", "dp_sgd"), default=None, help="AUREON's side (see module doc)")
    parser.add_argument("--server", choices=("aureon", "flower"), default="aureon", help="the server, for mixed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.server == "flower" and args.mode != "mixed":
        raise ConfigError(f"--server flower applies to mixed only; {args.mode} fixes its server")
    privacy = args.privacy or ("dp_sgd" if args.mode == "aureon-clients" else "none")
    if args.server == "flower" and privacy == "dp_sgd":
        raise ConfigError(
            "mixed --server flower needs --privacy none: Flower's FedAvg stops on replies with different metric "
            "names, and AUREON's DP client reports epsilon where the plain client reports train-loss"
        )
    out = args.out or Path("outputs") / "flower_mix" / f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
    return run(args.mode, rounds=args.rounds, privacy=privacy, server=args.server, out=out)


def main(argv: list[str] | None = None) -> int:
    """The command's exit code: 0, 1 when a round made no model, 2 after one ``error: ...`` line."""
    return run_cli(command, argv)


if __name__ == "__main__":
    raise SystemExit(main())
