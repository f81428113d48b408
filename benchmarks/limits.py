"""AUREON against the compute limit: the same DP-SGD recipe as a bare single-process loop.

For each recipe (mnist_dp: conf/experiment/mnist_dp.yaml on full MNIST; cnn:
the small CNN on the 5,000-digit subset), in one run, one after the other:

- the bare loop: one Python process, the recipe's features, model, partitions
  and local recipe, Opacus' ``make_private`` with Poisson batches, the noise
  calibrated for the whole run and one Opacus accountant per client, clients
  trained one after another, FedAvg weighted by examples, the global model
  evaluated on the test split after each round. No Flower, no Ray, no ledger;
  this is what the math costs on this machine;
- AUREON's own run of the same config (``python -m simulations.run``'s
  in-process equivalent: Flower's Simulation Engine, ledgers, round log);

each with ``grad_sample_mode=hooks`` and with the mode ``auto`` picks for the
model (ghost clipping for mnist_dp's linear model; hooks for the CNN, where
the two runs are the same and are made once). The figures: wall time, seconds
per round, final accuracy, epsilon, and AUREON's ratio to the bare loop in the
same mode.

The bare loop runs on ``--bare-threads`` torch threads (default 1: on a
shared machine, intra-op threads that wait for each other at every operation
collapse under load, and AUREON's simulated clients also run one thread
each). AUREON trains up to ``parallel`` clients at once (cores / client_cpus,
at most the clients), so the table also quotes its ratio to the bare loop's
seconds divided by that parallelism: the ideal of the same math spread
perfectly over the cores.

    python benchmarks/limits.py [--mnist-path PATH] [--recipes mnist_dp cnn] [--bare-threads N]
                                [--modes hooks auto] [--override KEY=VALUE ...]

The feature cache is warmed before anything is timed (its cost is reported
apart). Targets (issue 14): AUREON within 1.3x of the bare loop in the same
mode; mnist_dp in under 45 s wall for 8 rounds, accuracy within 0.1 point of 97.68%.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402
    DEFAULT_MNIST,
    PRESET,
    default_mnist_path,
    fmt,
    mnist_overrides,
    run_aureon,
)
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "limits"
RATIO_TARGET = 1.3
MNIST_DP_WALL_TARGET = 45.0
MNIST_DP_ACCURACY, ACCURACY_SLACK = 0.9768, 0.001
MODES = ("hooks", "auto")
RECIPES: dict[str, list[str]] = {
    "mnist_dp": [PRESET],  # + the MNIST path
    "cnn": ["dataset=mnist_subset", "features=none", "model=cnn"],
}


@dataclass(frozen=True)
class Client:
    x: np.ndarray
    y: np.ndarray
    noise_multiplier: float


def bare_clients(config: Any, dataset: Any) -> list[Client]:
    """The recipe's partitions, each with Opacus' own calibration for the whole run."""
    from opacus.accountants.utils import get_noise_multiplier

    from aureon.data import partition_indices

    clients = []
    for idx in partition_indices(dataset.y_train, config.partition, config.num_clients, config.seed):
        batches = -(-len(idx) // config.train.batch_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sigma = get_noise_multiplier(
                target_epsilon=config.privacy.target_epsilon,
                target_delta=config.privacy.target_delta,
                sample_rate=1 / batches,
                steps=batches * config.train.local_epochs * config.num_rounds,
                accountant=config.privacy.accountant,
                epsilon_tolerance=0.005,
            )
        clients.append(Client(x=dataset.x_train[idx], y=dataset.y_train[idx], noise_multiplier=sigma))
    return clients


def bare_round(
    global_model: nn.Module,
    client: Client,
    *,
    config: Any,
    server_round: int,
    mode: str,
    accountant: Any,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """One client's local DP-SGD from the global weights, straight on Opacus; returns its weights."""
    from opacus import PrivacyEngine

    model = copy.deepcopy(global_model)
    model.train()
    train = config.train.for_round(server_round)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay
    )
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(torch.from_numpy(client.x), torch.from_numpy(client.y)),
        batch_size=train.batch_size,
        generator=generator,
    )
    engine = PrivacyEngine(accountant=config.privacy.accountant)
    engine.accountant = accountant  # one accountant per client over the whole run
    made = engine.make_private(
        module=model,
        optimizer=optimizer,
        criterion=criterion,
        data_loader=loader,
        noise_multiplier=client.noise_multiplier,
        max_grad_norm=config.privacy.max_grad_norm,
        poisson_sampling=True,
        grad_sample_mode=mode,
        noise_generator=generator,
    )
    module, optimizer, criterion, loader = made if mode == "ghost" else (made[0], made[1], criterion, made[2])
    for _ in range(train.local_epochs):
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            criterion(module(xb), yb).backward()
            optimizer.step()
    module.remove_hooks()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fedavg(states: list[dict[str, torch.Tensor]], weights: list[int]) -> dict[str, torch.Tensor]:
    total = float(sum(weights))
    return {key: sum(s[key] * (w / total) for s, w in zip(states, weights, strict=True)) for key in states[0]}


def run_bare(overrides: list[str], mode: str, *, threads: int, seed: int = 0) -> dict[str, Any]:
    """The recipe as a bare loop on ``threads`` threads; timed from composing the config to the end."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_bare(overrides, mode, seed=seed)
    finally:
        torch.set_num_threads(saved)


def _run_bare(overrides: list[str], mode: str, *, seed: int) -> dict[str, Any]:
    from opacus.accountants import create_accountant

    from aureon.features import prepare_dataset
    from aureon.launch.run_config import compose_config
    from aureon.models import build_model
    from aureon.training import evaluate_model

    started = time.monotonic()
    config = compose_config(overrides)
    dataset = prepare_dataset(config.dataset, config.seed, config.features)
    clients = bare_clients(config, dataset)
    model = build_model(
        config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, seed=config.seed
    )
    accountants = [create_accountant(config.privacy.accountant) for _ in clients]
    generator = torch.Generator().manual_seed(seed)
    rounds = []
    for server_round in range(1, config.num_rounds + 1):
        round_start = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # secure-RNG and full-backward-hook notices, every round
            states = [
                bare_round(
                    model,
                    client,
                    config=config,
                    server_round=server_round,
                    mode=mode,
                    accountant=accountant,
                    generator=generator,
                )
                for client, accountant in zip(clients, accountants, strict=True)
            ]
            model.load_state_dict(fedavg(states, [len(c.y) for c in clients]))
            result = evaluate_model(model, dataset.x_test, dataset.y_test)
            epsilon = max(a.get_epsilon(delta=config.privacy.target_delta) for a in accountants)
        rounds.append(
            {
                "round": server_round,
                "test_accuracy": result.accuracy,
                "epsilon": epsilon,
                "seconds": time.monotonic() - round_start,
            }
        )
        print(
            f"  bare {mode} round {server_round}: acc {result.accuracy:.4f} eps {epsilon:.3f} "
            f"{rounds[-1]['seconds']:.1f} s",
            flush=True,
        )
    return {
        "wall_seconds": time.monotonic() - started,
        "rounds": rounds,
        "final": {"test_accuracy": rounds[-1]["test_accuracy"], "epsilon": rounds[-1]["epsilon"]},
    }


def aureon_figures(overrides: list[str]) -> dict[str, Any]:
    """AUREON's run of the same config: wall time and per-round figures from results.json."""
    results = run_aureon(overrides)
    rounds = [
        {"round": r["round"], "test_accuracy": r["test_accuracy"], "epsilon": r["epsilon_max"], "seconds": r["seconds"]}
        for r in results["rounds"]
    ]
    return {
        "wall_seconds": results["wall_seconds"],
        "rounds": rounds,
        "privacy": results.get("privacy"),
        "final": {"test_accuracy": results["final"]["test_accuracy"], "epsilon": results["final"]["epsilon_max"]},
    }


def per_round(run: dict[str, Any], *, skip_first: bool = False) -> float:
    seconds = [r["seconds"] for r in run["rounds"]][1 if skip_first else 0 :]
    return statistics.fmean(seconds) if seconds else float("nan")


def auto_mode(overrides: list[str]) -> str:
    """The mode ``grad_sample_mode=auto`` resolves to for the recipe's model."""
    from aureon.features import prepare_dataset
    from aureon.launch.run_config import compose_config
    from aureon.models import build_model
    from aureon.privacy.private_training import choose_grad_sample_mode

    config = compose_config(overrides)
    shape_source = prepare_dataset(config.dataset, config.seed, config.features, splits=("test",))
    model = build_model(
        config.model, input_shape=shape_source.input_shape, num_classes=shape_source.num_classes, seed=config.seed
    )
    return choose_grad_sample_mode("auto", model)


def warm_features(overrides: list[str]) -> float:
    """Compute (or find) the recipe's features before anything is timed; returns the seconds."""
    from aureon.features import prepare_dataset
    from aureon.launch.run_config import compose_config

    config = compose_config(overrides)
    started = time.monotonic()
    prepare_dataset(config.dataset, config.seed, config.features, ensure=("train", "test"))
    return time.monotonic() - started


def parallelism(overrides: list[str]) -> int:
    """How many simulated clients AUREON trains at once: cores / client_cpus, at most the clients."""
    from aureon.launch.run_config import compose_config

    config = compose_config(overrides)
    return max(1, min(config.num_clients, int((os.cpu_count() or 1) / config.simulation.client_cpus)))


def measure(name: str, base: list[str], *, bare_threads: int, modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """Bare loop and AUREON, hooks then the auto mode (once if they are the same), one at a time."""
    print(f"=== {name}: {' '.join(base)}", flush=True)
    features_seconds = warm_features(base)
    chosen = auto_mode(base)
    wanted = {"hooks" if mode == "hooks" else chosen for mode in modes}
    modes = tuple(mode for mode in dict.fromkeys(["hooks", chosen]) if mode in wanted)
    runs: dict[str, dict[str, Any]] = {}
    for mode in modes:
        print(f"--- bare loop, {mode}", flush=True)
        bare = run_bare(base, mode, threads=bare_threads)
        print(f"--- AUREON, privacy.grad_sample_mode={mode}", flush=True)
        aureon = aureon_figures([*base, f"privacy.grad_sample_mode={mode}"])
        runs[mode] = {"bare": bare, "aureon": aureon}
    return {
        "overrides": base,
        "auto_picks": chosen,
        "feature_warmup_seconds": features_seconds,
        "bare_threads": bare_threads,
        "parallel": parallelism(base),
        "runs": runs,
    }


def table(measured: dict[str, dict[str, Any]]) -> str:
    rows = []
    for recipe, block in measured.items():
        for mode, pair in block["runs"].items():
            label = f"{mode} (= auto)" if mode == block["auto_picks"] else mode
            bare, aureon = pair["bare"], pair["aureon"]
            ideal = per_round(bare, skip_first=True) / block["parallel"]
            for who, run in (("bare loop", bare), ("AUREON", aureon)):
                ratios = ["1.00", "1.00", fmt(per_round(run, skip_first=True) / ideal, ".2f")]
                if who == "AUREON":
                    ratios = [
                        fmt(run["wall_seconds"] / bare["wall_seconds"], ".2f"),
                        fmt(per_round(run, skip_first=True) / per_round(bare, skip_first=True), ".2f"),
                        ratios[2],
                    ]
                rows.append(
                    [
                        recipe,
                        label,
                        who,
                        len(run["rounds"]),
                        fmt(run["wall_seconds"], ".1f"),
                        fmt(run["rounds"][0]["seconds"] if run["rounds"] else None, ".2f"),
                        fmt(per_round(run), ".2f"),
                        fmt(per_round(run, skip_first=True), ".2f"),
                        fmt(run["final"]["test_accuracy"]),
                        fmt(run["final"]["epsilon"], ".3f"),
                        *ratios,
                    ]
                )
    header = [
        "recipe",
        "grad_sample_mode",
        "run",
        "rounds",
        "wall s",
        "round 1 s",
        "s/round",
        "s/round (2+)",
        "test acc",
        "epsilon",
        "wall / bare",
        "s/round (2+) / bare",
        "s/round (2+) / ideal parallel",
    ]
    return markdown_table(header, rows)


def verdicts(measured: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for recipe, block in measured.items():
        for mode, pair in block["runs"].items():
            ratio = pair["aureon"]["wall_seconds"] / pair["bare"]["wall_seconds"]
            lines.append(
                f"- {recipe}, {mode}: AUREON at {ratio:.2f}x the bare loop's wall time "
                f"(target {RATIO_TARGET}x): {'met' if ratio <= RATIO_TARGET else 'missed'}"
            )
    if "mnist_dp" in measured:
        block = measured["mnist_dp"]
        aureon = block["runs"][block["auto_picks"]]["aureon"]
        wall, accuracy = aureon["wall_seconds"], aureon["final"]["test_accuracy"]
        lines.append(
            f"- mnist_dp with auto ({block['auto_picks']}): {wall:.1f} s wall for "
            f"{len(aureon['rounds'])} rounds (target < {MNIST_DP_WALL_TARGET:.0f} s): "
            f"{'met' if wall < MNIST_DP_WALL_TARGET else 'missed'}; accuracy {accuracy:.4f} "
            f"(target {MNIST_DP_ACCURACY:.4f} +/- {ACCURACY_SLACK}): "
            f"{'met' if abs(accuracy - MNIST_DP_ACCURACY) <= ACCURACY_SLACK else 'missed'}"
        )
    return lines


def report(measured: dict[str, dict[str, Any]]) -> str:
    warmups = ", ".join(f"{r} {b['feature_warmup_seconds']:.1f} s" for r, b in measured.items())
    threads = ", ".join(sorted({str(b["bare_threads"]) for b in measured.values()}))
    parallel = ", ".join(f"{r} {b['parallel']}" for r, b in measured.items())
    return (
        "# AUREON against the bare DP-SGD loop (the compute limit)\n\n"
        "Each recipe runs as a bare single-process loop straight on Opacus (same features, "
        "model, IID partitions, Poisson batches, calibrated noise, clipping, FedAvg, rounds; "
        "no Flower, Ray or ledger) and as AUREON's own run of the same config, with "
        "`grad_sample_mode=hooks` and with the mode `auto` picks, one run at a time. "
        "`s/round (2+)` leaves out round 1 (AUREON's includes Ray start-up and feature loading). "
        "Epsilon: the bare loop's is Opacus' RDP accountant with its default orders; AUREON's "
        "its ledger's (RDP over orders up to 1024), the max over clients, delta 1e-5. "
        f"Feature cache warmed first ({warmups}). The bare loop ran on {threads} torch thread(s); "
        f"'ideal parallel' is its seconds per round divided by the clients AUREON trains at once "
        f"({parallel}).\n\n" + table(measured) + "\n" + "\n".join(verdicts(measured)) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mnist-path",
        type=Path,
        default=default_mnist_path() or DEFAULT_MNIST,
        help="folder of MNIST's IDX files (default: $AUREON_MNIST_PATH, else ../shared/data/mnist beside the repo)",
    )
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--bare-threads", type=int, default=1, help="torch threads of the bare loop (default 1)")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every run")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        help="grad_sample_mode runs to make (default: hooks and what auto picks; auto alone is much shorter)",
    )
    args = parser.parse_args()
    measured = {}
    for recipe in args.recipes:
        base = [*RECIPES[recipe], *args.override]
        if recipe == "mnist_dp":
            base = [*RECIPES[recipe], *mnist_overrides(args.mnist_path), *args.override]
        measured[recipe] = measure(recipe, base, bare_threads=args.bare_threads, modes=tuple(args.modes))
    mnist = str(Path(args.mnist_path).expanduser().resolve())
    data = {"machine": machine(), "recipes": measured}
    json_path, md_path = write(NAME, data, report(measured), redact={mnist: "<mnist>"})
    print(report(measured))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
