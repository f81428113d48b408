"""Simulation at scale, side by side with plain Flower: 100 and 1,000 virtual clients.

For each client count, three runs, each in a fresh child process (its own Ray),
on the same data, partitions (Dirichlet(0.5) label skew over MNIST's training
split), model (logistic regression on the pixels: a trivial model, so the
figures are the frameworks' cost, not training's), local recipe (one epoch,
batch 32, SGD) and backend resources (one CPU per client actor, a local Ray of
at most the machine's CPUs), every client training every round:

- ``flower``: plain Flower, a minimal ServerApp (FedAvg's ``start``) and a
  ClientApp on the Message API, run with ``flwr.simulation.run_simulation``;
- ``aureon``: AUREON's simulation (its ServerApp and ClientApp) without DP;
- ``aureon_dp``: the same with sample-level DP-SGD on every client
  (epsilon 2), on a cold noise-calibration cache (a fresh ``XDG_CACHE_HOME``),
  as on a machine's first run: round 1 pays each client's calibration.

Seconds per round are measured the same way for all three: from the end of
one round's server-side evaluation to the end of the next (round 1 counts
from the evaluation of the initial model, so it includes the Ray actors'
imports and their data loading). AUREON's own per-phase seconds come from
its results.json. Memory is sampled every 0.5 s over the child's whole
process tree (driver, Ray's GCS and raylet, every worker): RSS summed per
process, and PSS (a page shared by several processes divided among them,
from /proc/<pid>/smaps_rollup).

    python benchmarks/scale.py [--mnist-path PATH] [--clients 100 1000] [--rounds 3]
    python benchmarks/scale.py --quick    # 20 clients on scikit-learn's digits, 2 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import REPO, add_mnist_argument, fmt, mnist_overrides  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "scale"
PAGE = os.sysconf("SC_PAGE_SIZE")
GIB = 2**30
RUNS = ("flower", "aureon", "aureon_dp")
PRIVACY = {"flower": "none", "aureon": "none", "aureon_dp": "dp_sgd"}
PHASE_NAMES = ("configure", "train", "serialize", "count_bytes", "aggregate", "evaluate", "checkpoint")


def workload(num_clients: int, rounds: int, privacy: str) -> list[str]:
    """The overrides every run shares: Dirichlet label skew, a linear model on pixels, one epoch of SGD."""
    return [
        f"num_clients={num_clients}",
        f"num_rounds={rounds}",
        "partition=dirichlet",
        "partition.alpha=0.5",
        "strategy.fraction_train=1.0",
        f"privacy={privacy}",
        "features=none",
        "model=logreg",
        "train.local_epochs=1",
        "train.batch_size=32",
        "train.lr=0.05",
        "train.momentum=0.9",
        "train.lr_decay=1.0",
    ]


# ------------------------------------------------------------------ memory
def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process /proc shows."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children, tree, todo = _children_map(), [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _rss_and_pss(pid: int) -> tuple[int, int]:
    """Resident and proportional set size of one process, in bytes (0, 0 if it is gone)."""
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
                break
        return rss, pss
    except (OSError, ValueError, IndexError):
        return 0, 0


class TreeMemorySampler:
    """Samples a process tree's summed RSS and PSS on a thread; keeps the peaks."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self.root, self.interval = root, interval
        self.peak_rss = self.peak_pss = self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            pids = process_tree(self.root)
            sizes = [_rss_and_pss(pid) for pid in pids]
            self.peak_rss = max(self.peak_rss, sum(r for r, _ in sizes))
            self.peak_pss = max(self.peak_pss, sum(p for _, p in sizes))
            self.peak_processes = max(self.peak_processes, len(pids))


# ------------------------------------------------------------ plain Flower
_PLAIN_DATA: dict[tuple[int, int], tuple[Any, Any, int]] = {}  # per worker: a client's rows, read once


def _plain_partition(config: Any, partition_id: int, num_partitions: int) -> tuple[Any, Any, int]:
    """The rows AUREON's client ``partition_id`` trains on (and the class count), kept in this
    worker as a Flower app keeps its data."""
    key = (partition_id, num_partitions)
    if key not in _PLAIN_DATA:
        import numpy as np

        from aureon.data import client_indices
        from aureon.features import prepare_dataset

        dataset = prepare_dataset(config.dataset, config.seed, config.features)
        idx = client_indices(dataset.y_train, config.partition, partition_id, num_partitions, config.seed)
        rows = (np.array(dataset.x_train[idx]), np.array(dataset.y_train[idx]), dataset.num_classes)
        _PLAIN_DATA[key] = rows
    return _PLAIN_DATA[key]


def _plain_model(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The architecture of AUREON's model=logreg: a Linear layer on the flattened input."""
    import math

    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


def plain_flower_apps(config: Any, stamps: list[float], accuracy: list[float]) -> tuple[Any, Any]:
    """A minimal Flower ServerApp (FedAvg) and ClientApp doing AUREON's local recipe, no DP.

    ``stamps`` and ``accuracy`` receive the time each server-side evaluation ends and its
    test accuracy (round 0, the initial model, first).
    """
    import torch
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    train = config.train
    client = ClientApp()

    @client.train()
    def fit(msg: Message, context: Context) -> Message:
        pid, parts = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
        x, y, num_classes = _plain_partition(config, pid, parts)
        model = _plain_model(tuple(x.shape[1:]), num_classes)
        model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
        loader = DataLoader(
            TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
            batch_size=train.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(config.seed + pid),
        )
        lr = float(cast(float, msg.content.config_records["config"]["lr"]))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=train.momentum)
        criterion, total = nn.CrossEntropyLoss(), 0.0
        model.train()
        for _ in range(train.local_epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
                total += float(loss)
        metrics = MetricRecord({"num-examples": len(y), "train_loss": total / max(len(loader), 1)})
        return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}), reply_to=msg)

    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        from aureon.features import prepare_dataset

        del context
        test = prepare_dataset(config.dataset, config.seed, config.features, splits=("test",))
        model = _plain_model(test.input_shape, test.num_classes)
        x_test, y_test = torch.from_numpy(test.x_test), torch.from_numpy(test.y_test)

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            model.load_state_dict(arrays.to_torch_state_dict())
            model.eval()
            with torch.no_grad():
                logits = model(x_test)
                accuracy_now = float((logits.argmax(1) == y_test).float().mean())
                loss = float(nn.functional.cross_entropy(logits, y_test))
            stamps.append(time.monotonic())
            accuracy.append(accuracy_now)
            return MetricRecord({"accuracy": accuracy_now, "loss": loss})

        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=config.num_clients)
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(model.state_dict()),
            num_rounds=config.num_rounds,
            timeout=config.deployment.round_timeout,
            train_config=ConfigRecord({"lr": train.lr}),
            evaluate_fn=evaluate,
        )

    return server, client


def run_plain_flower(overrides: list[str]) -> dict[str, Any]:
    """Plain Flower on the config ``overrides`` describe, with AUREON's simulation backend settings."""
    from flwr.simulation import run_simulation

    from aureon.launch.quiet import quiet_flower
    from aureon.launch.ray_runtime import RayStart
    from aureon.launch.run_config import compose_config
    from aureon.launch.simulation import backend_config

    config = compose_config(overrides)
    started = time.monotonic()
    ray = RayStart(config)  # the same local Ray (CPUs, logging) AUREON starts
    stamps: list[float] = []
    accuracy: list[float] = []
    server, client = plain_flower_apps(config, stamps, accuracy)
    quiet_flower(config.verbose)
    ray.wait()
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=config.num_clients,
        backend_config=backend_config(config),
    )
    return {"wall_seconds": time.monotonic() - started, "round_ends": stamps, "test_accuracy": accuracy[1:]}


# ----------------------------------------------------------------- AUREON
def run_aureon_timed(overrides: list[str]) -> dict[str, Any]:
    """AUREON's simulation; the time each round is written (round 0: the initial model) is stamped."""
    from aureon.tracking.run_tracker import RunTracker
    from benchmarks._common import run_aureon

    stamps: list[float] = []

    def stamped(method: Callable[..., None]) -> Callable[..., None]:
        def call(self: RunTracker, *args: Any, **kwargs: Any) -> None:
            method(self, *args, **kwargs)
            stamps.append(time.monotonic())

        return call

    RunTracker.log_initial = stamped(RunTracker.log_initial)  # type: ignore[method-assign]
    RunTracker.log_round = stamped(RunTracker.log_round)  # type: ignore[method-assign]
    results = run_aureon(overrides)
    results["round_ends"] = stamps
    return results


def run_child(kind: str, overrides: list[str], out: Path) -> None:
    """In the child: one run; its figures go to ``out``."""
    results = run_plain_flower(overrides) if kind == "flower" else run_aureon_timed(overrides)
    out.write_text(json.dumps(results))


def _round_seconds(round_ends: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(round_ends, round_ends[1:], strict=False)]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(kind: str, results: dict[str, Any]) -> dict[str, Any]:
    """Round seconds (round 1, the mean of the others) and, for AUREON, its results.json figures."""
    seconds = _round_seconds(results["round_ends"])
    point: dict[str, Any] = {
        "wall_seconds": results["wall_seconds"],
        "round_seconds": seconds,
        "first_round_seconds": seconds[0] if seconds else None,
        "later_round_seconds_mean": _mean(seconds[1:]),
    }
    if kind == "flower":
        point["test_accuracy"] = results["test_accuracy"]
    else:
        rounds = results["rounds"]
        point["aureon_round_seconds"] = [r["seconds"] for r in rounds]
        point["phases"] = [r.get("phases", {}) for r in rounds]
        point["clients_per_round"] = [len(r["clients"]) for r in rounds]
        point["failures_per_round"] = [r["num_failures"] for r in rounds]
        point["rejected_per_round"] = [r["num_rejected"] for r in rounds]
        point["test_accuracy"] = [r["test_accuracy"] for r in rounds]
        point["epsilon_max"] = [r["epsilon_max"] for r in rounds]
        point["grad_sample_mode"] = results.get("privacy", {}).get("grad_sample_mode")
    return point


def measure(kind: str, overrides: list[str]) -> dict[str, Any]:
    """Run one point in a child process and sample its process tree's memory."""
    with tempfile.TemporaryDirectory(prefix="aureon-scale-") as tmp:
        out = Path(tmp) / "results.json"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if kind == "aureon_dp":
            env["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # a first run: no noise calibration stored
        cmd = [sys.executable, "-m", "benchmarks.scale", "--child", kind, str(out), "--overrides", *overrides]
        proc = subprocess.Popen(cmd, cwd=REPO, env=env)
        with TreeMemorySampler(proc.pid) as sampler:
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"scale run {kind} {overrides} exited with status {code}")
        results = json.loads(out.read_text())
    return {
        **summarize(kind, results),
        "peak_rss_bytes": sampler.peak_rss,
        "peak_pss_bytes": sampler.peak_pss,
        "peak_processes": sampler.peak_processes,
    }


# ----------------------------------------------------------------- report
def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def _phase_means(point: dict[str, Any]) -> dict[str, float]:
    """AUREON's mean seconds per phase over rounds 2+ (round 1 alone if there is no other)."""
    phases = point.get("phases") or []
    later = phases[1:] or phases
    return {name: sum(p.get(name, 0.0) for p in later) / len(later) for name in PHASE_NAMES} if later else {}


def report(points: list[dict[str, Any]], *, rounds: int, dataset: str) -> str:
    """The Markdown page: one row per run, ratios to plain Flower and to AUREON without DP."""
    rows, phase_rows = [], []
    by_key = {(p["num_clients"], p["run"]): p for p in points}
    for p in points:
        flower = by_key.get((p["num_clients"], "flower"), {})
        plain = by_key.get((p["num_clients"], "aureon"), {})
        first, later = p["first_round_seconds"], p["later_round_seconds_mean"]
        rows.append(
            [
                p["num_clients"],
                p["run"],
                fmt(first, ".1f"),
                fmt(later, ".1f"),
                _ratio(first, flower.get("first_round_seconds")),
                _ratio(later, flower.get("later_round_seconds_mean")),
                _ratio(first, plain.get("first_round_seconds")) if p["run"] == "aureon_dp" else "-",
                _ratio(later, plain.get("later_round_seconds_mean")) if p["run"] == "aureon_dp" else "-",
                fmt(p["wall_seconds"], ".0f"),
                fmt(p["peak_rss_bytes"] / GIB, ".2f"),
                fmt(p["peak_pss_bytes"] / GIB, ".2f"),
                p["peak_processes"],
                fmt(p["test_accuracy"][-1]) if p.get("test_accuracy") else "-",
            ]
        )
        if p["run"] != "flower":
            means = _phase_means(p)
            other = (later if later is not None else first or 0.0) - sum(means.values())
            phase_rows.append(
                [p["num_clients"], p["run"], *(fmt(means.get(n), ".2f") for n in PHASE_NAMES), fmt(other, ".2f")]
            )
    header = [
        "clients",
        "run",
        "round 1 s",
        "rounds 2+ s",
        "round 1 / Flower",
        "rounds 2+ / Flower",
        "round 1 / no-DP",
        "rounds 2+ / no-DP",
        "wall s",
        "peak RSS GiB",
        "peak PSS GiB",
        "processes",
        "final acc",
    ]
    return (
        f"# Simulation at scale, side by side with plain Flower: {dataset}, Dirichlet(0.5), {rounds} rounds\n\n"
        "Same data, partitions, model (logistic regression on pixels), local recipe (1 epoch, batch 32, "
        "SGD) and Ray resources; every client trains every round. `flower`: a minimal Flower ServerApp "
        "(FedAvg) and ClientApp under `flwr.simulation.run_simulation`; `aureon`: AUREON without DP; "
        "`aureon_dp`: sample-level DP-SGD (epsilon 2) on a cold noise-calibration cache. A round's seconds "
        "run from the end of one server-side evaluation to the end of the next (round 1: from the initial "
        "model's, so it includes the Ray actors' imports and data loading). Memory is sampled every 0.5 s "
        "over each run's process tree: RSS summed per process, PSS (shared pages divided among their users)."
        "\n\n"
        + markdown_table(header, rows)
        + "\n## Where AUREON's rounds 2+ go (mean seconds per phase, from results.json)\n\n"
        "`train` is the wait for the clients' replies (their work in the Ray actors); `other` is the rest "
        "of the round as measured above (writing results.json and TensorBoard, waiting for nodes, Flower's "
        "message bookkeeping).\n\n" + markdown_table(["clients", "run", *PHASE_NAMES, "other"], phase_rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mnist_argument(parser)
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--quick", action="store_true", help="20 clients on scikit-learn's digits, 2 rounds")
    parser.add_argument("--name", default=NAME, help="results file name (default: scale; --quick: scale_quick)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--overrides", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_child(args.child[0], args.overrides, Path(args.child[1]))
        return
    if args.rounds < 2:
        parser.error(f"--rounds must be >= 2 (round 1 and later rounds are reported apart), got {args.rounds}")
    if args.quick:
        clients, rounds, data, dataset = [20], 2, ["dataset=digits"], "scikit-learn digits"
        name = NAME + "_quick" if args.name == NAME else args.name
    else:
        clients, rounds, data, dataset = args.clients, args.rounds, mnist_overrides(args.mnist_path), "MNIST"
        name = args.name
    points = []
    for num_clients in clients:
        for run in args.runs:
            print(f"--- {num_clients} clients: {run}", flush=True)
            overrides = [*data, *workload(num_clients, rounds, PRIVACY[run])]
            point = {"num_clients": num_clients, "run": run, **measure(run, overrides)}
            point["overrides"] = [o for o in overrides if not o.startswith("dataset.path=")]
            points.append(point)
            print(
                f"    round 1 {fmt(point['first_round_seconds'], '.1f')} s, rounds 2+ "
                f"{fmt(point['later_round_seconds_mean'], '.1f')} s, peak PSS {point['peak_pss_bytes'] / GIB:.2f} GiB",
                flush=True,
            )
            # written after every point: a long run stopped part way keeps what it measured
            data_out = {"rounds": rounds, "dataset": dataset, "machine": machine(), "points": points}
            json_path, md_path = write(name, data_out, report(points, rounds=rounds, dataset=dataset))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
