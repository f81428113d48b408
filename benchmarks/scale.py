"""Simulation mode at scale: 100 and 1,000 virtual clients on full MNIST.

Each client count runs in a child process (a fresh Ray), Dirichlet(alpha=0.5)
label skew, a few rounds, while this process samples the memory of the child's
whole process tree (the driver, Ray's GCS and raylet, every Ray worker) from
/proc. Reports seconds per round and peak memory: the summed resident set
(RSS, counts pages shared between processes once per process) and the summed
proportional set (PSS, shares them out: the memory the run really occupies).

    python benchmarks/scale.py [--mnist-path PATH] [--clients 100 1000] [--fraction 1.0 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import add_mnist_argument, fmt, mnist_overrides, run_aureon  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "scale"
PAGE = os.sysconf("SC_PAGE_SIZE")


def workload(num_clients: int, fraction: float, rounds: int, privacy: str) -> list[str]:
    """The scale run's overrides: Dirichlet label skew, one local epoch, small batches."""
    return [
        f"num_clients={num_clients}",
        f"num_rounds={rounds}",
        "partition=dirichlet",
        "partition.alpha=0.5",
        f"strategy.fraction_train={fraction}",
        f"privacy={privacy}",
        "model=cnn",
        "train.local_epochs=1",
        "train.batch_size=32",
        "train.lr=0.05",
        "train.momentum=0.9",
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


# -------------------------------------------------------------------- runs
def run_child(overrides: list[str], out: Path) -> None:
    """In the child: one AUREON run; its figures go to ``out``."""
    results = run_aureon(overrides)
    out.write_text(json.dumps(results))


def measure(overrides: list[str]) -> dict[str, Any]:
    """Run one scale point in a child process and sample its process tree's memory."""
    with tempfile.TemporaryDirectory(prefix="aureon-scale-") as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, __file__, "--child", str(out), "--overrides", *overrides]
        proc = subprocess.Popen(cmd)
        with TreeMemorySampler(proc.pid) as sampler:
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"scale run {overrides} exited with status {code}")
        results = json.loads(out.read_text())
    seconds = [r["seconds"] for r in results["rounds"]]
    later = seconds[1:] or seconds
    return {
        "wall_seconds": results["wall_seconds"],
        "round_seconds": seconds,
        "first_round_seconds": seconds[0],
        "later_round_seconds_mean": sum(later) / len(later),
        "clients_per_round": [len(r["clients"]) for r in results["rounds"]],
        "failures_per_round": [r["num_failures"] for r in results["rounds"]],
        "test_accuracy": [r["test_accuracy"] for r in results["rounds"]],
        "bytes_up_per_round": [r["bytes_up_total"] for r in results["rounds"]],
        "peak_rss_bytes": sampler.peak_rss,
        "peak_pss_bytes": sampler.peak_pss,
        "peak_processes": sampler.peak_processes,
    }


def report(points: list[dict[str, Any]], privacy: str, rounds: int) -> str:
    """The Markdown page."""
    rows = [
        [
            p["num_clients"],
            p["fraction_train"],
            round(sum(p["clients_per_round"]) / len(p["clients_per_round"])),
            fmt(p["first_round_seconds"], ".1f"),
            fmt(p["later_round_seconds_mean"], ".1f"),
            fmt(p["wall_seconds"], ".0f"),
            fmt(p["peak_rss_bytes"] / 2**30, ".2f"),
            fmt(p["peak_pss_bytes"] / 2**30, ".2f"),
            p["peak_processes"],
            fmt(p["test_accuracy"][-1]),
        ]
        for p in points
    ]
    header = ["clients", "fraction_train", "trained/round", "round 1 s", "later rounds s",
              "wall s", "peak RSS GiB", "peak PSS GiB", "processes", "final acc"]
    return (
        f"# Simulation at scale: MNIST, Dirichlet(0.5), {rounds} rounds, privacy={privacy}\n\n"
        "Each row is a fresh process tree (driver + Ray). Round 1 includes starting the "
        "Ray workers and loading and partitioning MNIST in each; 'later rounds' is the "
        "mean of the others. Memory is sampled every 0.5 s over the whole tree: RSS "
        "summed per process (shared pages counted in every process) and PSS (shared "
        "pages divided among their users).\n\n" + markdown_table(header, rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mnist_argument(parser)
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--fraction", type=float, nargs="+", default=[1.0, 1.0],
                        help="strategy.fraction_train for each --clients entry")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--privacy", choices=["none", "dp_sgd"], default="none")
    parser.add_argument("--name", default=NAME, help="results file name (default: scale)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--overrides", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_child(args.overrides, args.child)
        return
    if len(args.fraction) != len(args.clients):
        parser.error("--fraction needs one value per --clients value")
    points = []
    for num_clients, fraction in zip(args.clients, args.fraction, strict=True):
        print(f"--- {num_clients} clients, fraction_train={fraction}", flush=True)
        overrides = [*mnist_overrides(args.mnist_path),
                     *workload(num_clients, fraction, args.rounds, args.privacy)]
        point = {"num_clients": num_clients, "fraction_train": fraction, **measure(overrides)}
        point["overrides"] = [o for o in overrides if not o.startswith("dataset.path=")]
        points.append(point)
    data = {"privacy": args.privacy, "rounds": args.rounds, "machine": machine(),
            "points": points}
    json_path, md_path = write(args.name, data, report(points, args.privacy, args.rounds))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
