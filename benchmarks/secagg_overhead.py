"""Cost of secure aggregation: seconds and bytes per round, with and without, at 5/10/50 clients.

Each setting is run in Flower's Simulation Engine (Ray, 2 client actors on
2 cores): scikit-learn's digits, the small CNN (21,546 float32 parameters,
86 KB per model), no DP (DP-SGD's per-sample gradients would hide the
protocol's cost behind training time), one local epoch of SGD (batch 32,
lr 0.05, momentum 0.9). The first round of each run is a warm-up (Ray starts
its actors) and is left out; seconds are the median of the other rounds of
all repeats (repeats are interleaved across settings, so a busy spell on a
shared machine hits every setting), bytes are per client per round, both
directions, counted on the serialized messages of every protocol stage.

    python benchmarks/secagg_overhead.py
    python benchmarks/secagg_overhead.py --clients 50 --repeats 3

Targets (issue 4): at 50 clients, bytes per client within 1.5x of the plain
run and seconds per round within 2x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_aureon  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "secagg_overhead"
TARGETS = {"bytes_per_client": 1.5, "seconds_per_round": 2.0}
TARGET_CLIENTS = 50


def _settings(clients: int, neighbourhood: int) -> dict[str, list[str]]:
    """The runs for one client count: plain, SecAgg (everyone shares), SecAgg+ when it is sparser."""
    runs = {
        "plain": ["secure_aggregation=none"],
        "secagg": ["secure_aggregation=secagg_plus", "secure_aggregation.num_shares=0"],
    }
    if neighbourhood < clients:
        runs[f"secagg+ (k={neighbourhood})"] = [
            "secure_aggregation=secagg_plus",
            f"secure_aggregation.num_shares={neighbourhood}",
        ]
    return runs


def _measured(results: dict[str, Any]) -> dict[str, Any]:
    """One run's rounds after the warm-up: seconds each, bytes per client each."""
    rounds = results["rounds"][1:] or results["rounds"]
    return {
        "seconds": [r["seconds"] for r in rounds],
        "bytes_per_client": [(r["bytes_up_total"] + r["bytes_down_total"]) / max(len(r["clients"]), 1) for r in rounds],
        "bytes_up_per_client": [r["bytes_up_total"] / max(len(r["clients"]), 1) for r in rounds],
        "final_accuracy": results["final"]["test_accuracy"],
        "aggregation_errors": [r["aggregation_error"] for r in results["rounds"] if r["aggregation_error"]],
        "wall_seconds": results["wall_seconds"],
    }


def _figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median seconds per round over every measured round of every repeat; mean bytes."""
    return {
        "seconds_per_round": statistics.median(s for run in runs for s in run["seconds"]),
        "seconds_per_round_each_repeat": [statistics.median(run["seconds"]) for run in runs],
        "bytes_per_client": statistics.fmean(b for run in runs for b in run["bytes_per_client"]),
        "bytes_up_per_client": statistics.fmean(b for run in runs for b in run["bytes_up_per_client"]),
        "final_accuracy": runs[-1]["final_accuracy"],
        "aggregation_errors": [e for run in runs for e in run["aggregation_errors"]],
        "wall_seconds": sum(run["wall_seconds"] for run in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[5, 10, 50])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per run; the first is a warm-up")
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting, interleaved across settings")
    parser.add_argument("--neighbourhood", type=int, default=11, help="SecAgg+ num_shares (odd)")
    parser.add_argument("--name", default=NAME, help="results file name under benchmarks/results/")
    parser.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args(argv)

    base = [
        "dataset=digits",
        "model=cnn",
        "privacy=none",
        "train.local_epochs=1",
        "train.batch_size=32",
        "train.lr=0.05",
        "train.momentum=0.9",
        f"num_rounds={args.rounds}",
    ]
    load_before = os.getloadavg()
    measured: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        for clients in args.clients:
            for name, overrides in _settings(clients, args.neighbourhood).items():
                results = run_aureon([*base, f"num_clients={clients}", *overrides, *args.override])
                run = _measured(results)
                measured.setdefault((clients, name), []).append(run)
                print(
                    f"repeat {repeat + 1}  {clients:>3} clients  {name:<16} "
                    f"{statistics.median(run['seconds']):6.2f} s/round  "
                    f"{statistics.fmean(run['bytes_per_client']) / 1e3:8.1f} kB/client/round",
                    flush=True,
                )
    rows: list[dict[str, Any]] = []
    for clients in args.clients:
        plain = _figures(measured[(clients, "plain")])
        for name in _settings(clients, args.neighbourhood):
            figures = _figures(measured[(clients, name)])
            row = {"clients": clients, "setting": name, **figures}
            row["bytes_ratio"] = figures["bytes_per_client"] / plain["bytes_per_client"]
            row["seconds_ratio"] = figures["seconds_per_round"] / plain["seconds_per_round"]
            rows.append(row)
            print(
                f"{clients:>3} clients  {name:<16} {figures['seconds_per_round']:6.2f} s/round "
                f"({row['seconds_ratio']:.2f}x)  {figures['bytes_per_client'] / 1e3:8.1f} kB/client/round "
                f"({row['bytes_ratio']:.2f}x)  acc {figures['final_accuracy']:.4f}",
                flush=True,
            )

    verdicts = []
    for row in rows:
        if row["clients"] == TARGET_CLIENTS and row["setting"] != "plain":
            ratios = (("bytes_per_client", row["bytes_ratio"]), ("seconds_per_round", row["seconds_ratio"]))
            for figure, ratio in ratios:
                verdicts.append(
                    {
                        "setting": row["setting"],
                        "figure": figure,
                        "ratio": ratio,
                        "target": TARGETS[figure],
                        "met": ratio <= TARGETS[figure],
                    }
                )
    data = {
        "benchmark": NAME,
        "setup": {
            "dataset": "digits (scikit-learn, 1,347 train / 450 test)",
            "model": "cnn (21,546 float32 parameters)",
            "privacy": "none",
            "rounds": args.rounds,
            "repeats": args.repeats,
            "warm_up_rounds_excluded": 1,
            "overrides": [*base, *args.override],
            "secure_aggregation": "conf/secure_aggregation/secagg_plus.yaml defaults "
            "(modulus 2^32, 24-bit quantization, threshold = strict majority)",
        },
        "machine": {
            **machine(),
            "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
        },
        "rows": rows,
        "targets": verdicts,
    }
    header = ["clients", "setting", "s / round", "x plain", "kB / client / round", "x plain", "final acc"]
    table = markdown_table(
        header,
        [
            [
                r["clients"],
                r["setting"],
                f"{r['seconds_per_round']:.2f}",
                f"{r['seconds_ratio']:.2f}",
                f"{r['bytes_per_client'] / 1e3:.1f}",
                f"{r['bytes_ratio']:.2f}",
                f"{r['final_accuracy']:.4f}",
            ]
            for r in rows
        ],
    )
    target_table = markdown_table(
        ["setting (50 clients)", "figure", "ratio", "target", "met"],
        [
            [v["setting"], v["figure"], f"{v['ratio']:.2f}", f"<= {v['target']}", "yes" if v["met"] else "no"]
            for v in verdicts
        ],
    )
    markdown = (
        "# Secure aggregation overhead\n\n"
        f"{data['setup']['dataset']}, {data['setup']['model']}, no DP, {args.rounds} rounds "
        f"(first one excluded as warm-up), {args.repeats} run(s) per setting interleaved across "
        "settings, Flower Simulation Engine on "
        f"{data['machine']['cpu_count']} CPU cores. Seconds: median per round; bytes: per client per "
        "round, both directions, every protocol stage included. Load average (1 min) "
        f"{load_before[0]:.1f} before, {data['machine']['load_average_1_5_15_min']['after'][0]:.1f} "
        "after: other jobs shared the cores, so seconds vary from run to run; bytes do not.\n\n"
        f"{table}\n## Targets\n\n{target_table}"
    )
    json_path, md_path = write(args.name, data, markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
