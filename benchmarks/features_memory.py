"""The feature cache: seconds to compute full MNIST's scattering features, and a 5-client run's memory.

Each measurement runs in a fresh child process:

- compute: a cold cache (a temporary folder): ``prepare_dataset`` of full MNIST with
  features=scattering (load the images, transform, write both splits), and beside it
  the previous implementation (kymatio's torch frontend in batches of 1,024) on the
  same images.
- open: the warm cache as a client (both splits) and as the server (the test split
  alone) opens it: seconds and peak resident memory.
- run: ``python -m simulations.run +experiment=mnist_dp num_rounds=1`` on the warm
  cache, the process tree's memory sampled every 0.2 s: RSS summed over the
  processes (a page shared by several counts in each) and PSS summed (a shared page
  divided among its users: the memory the run really occupies).

    python benchmarks/features_memory.py [--mnist-path PATH] [--baseline-images N] [--skip-run]

Not in the table: the previous code's whole cold prepare_dataset took 736 s wall (453 s CPU, peak
RSS 3.6 GB) on the same 2 shared cores, measured once from a copy of the earlier tree. The 5-client
run's peak before issue 14's memory work (clients copying their partitions and importing
flwr-datasets, Ray's monitors, default malloc arenas): 2.63 GB PSS / 3.26 GB RSS, measured with this
script's run on the same machine the same day.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import REPO, add_mnist_argument, fmt, mnist_overrides  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402
from benchmarks.scale import TreeMemorySampler  # noqa: E402

NAME = "features_memory"
MNIST_IMAGES = 70_000
GIB = 2**30


def _config(mnist: Path, cache: Path, *extra: str) -> Any:
    from aureon.launch.run_config import compose_config

    return compose_config([*mnist_overrides(mnist), "features=scattering", f"features.cache_dir={cache}", *extra])


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _resident_bytes() -> int:
    """This process's resident set now (not its peak)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------- child processes
def child_compute(mnist: Path, cache: Path) -> dict[str, Any]:
    """Cold cache: what a first run waits for before round 1."""
    import torch

    from aureon.features import prepare_dataset

    config = _config(mnist, cache)
    started, cpu = time.perf_counter(), _cpu_seconds()
    dataset = prepare_dataset(config.dataset, config.seed, config.features)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu,
        "images": len(dataset.x_train) + len(dataset.x_test),
        "feature_shape": list(dataset.input_shape),
        "cache_bytes": sum(p.stat().st_size for p in cache.iterdir()),
        "peak_rss_bytes": _peak_rss_bytes(),
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads_default": torch.get_num_threads(),
    }


def child_kymatio(mnist: Path, images: int) -> dict[str, Any]:
    """The previous implementation: kymatio's frontend, batches of 1,024, torch's default threads."""
    import numpy as np
    import torch
    from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D

    from aureon.data import load_dataset

    config = _config(mnist, Path(tempfile.gettempdir()))
    raw = load_dataset(config.dataset, config.seed)
    pixels = np.concatenate([raw.x_train, raw.x_test])[: images or None]
    transform = ScatteringTorch2D(J=config.features.J, shape=pixels.shape[-2:], L=config.features.orientations)
    started, cpu = time.perf_counter(), _cpu_seconds()
    with torch.no_grad():
        for start in range(0, len(pixels), 1024):
            transform(torch.from_numpy(np.ascontiguousarray(pixels[start : start + 1024])))
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    scale = MNIST_IMAGES / len(pixels)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "images": len(pixels),
        "seconds_for_70000": seconds * scale,
        "cpu_seconds_for_70000": cpu * scale,
    }


def child_open(mnist: Path, cache: Path, splits: list[str]) -> dict[str, Any]:
    """Warm cache: a process opening the splits it needs, and (for train) a client's partition and one epoch."""
    import numpy as np

    from aureon.data import client_indices
    from aureon.features import partition_cache_dir, prepare_dataset, take_rows
    from aureon.training.loops import ArrayRows

    config = _config(mnist, cache, "num_clients=5")
    started = time.perf_counter()
    dataset = prepare_dataset(config.dataset, config.seed, config.features, splits=splits)
    result: dict[str, Any] = {"splits": splits, "open_seconds": time.perf_counter() - started}
    result["peak_rss_after_open_bytes"] = _peak_rss_bytes()
    if "train" in splits:
        where = partition_cache_dir(config.features)
        client_indices(dataset.y_train, config.partition, 0, 5, config.seed, cache_dir=where)  # the driver's part
        before = _resident_bytes()
        started = time.perf_counter()
        idx = client_indices(dataset.y_train, config.partition, 0, 5, config.seed, cache_dir=where)
        rows = take_rows(dataset.x_train, idx)
        result["client_take_seconds"] = time.perf_counter() - started
        result["client_rows"], result["client_bytes"] = len(rows), rows.nbytes
        result["client_rows_are_a_view"] = bool(np.shares_memory(rows, dataset.x_train))
        result["resident_added_by_take_rows_bytes"] = _resident_bytes() - before
        epoch = ArrayRows(rows, dataset.y_train[idx])
        order = np.random.default_rng(0).permutation(len(epoch))
        started = time.perf_counter()
        for start in range(0, len(order), 512):  # one epoch of batches of 512, as training gathers them
            epoch.__getitems__(order[start : start + 512].tolist())
        result["client_epoch_gather_seconds"] = time.perf_counter() - started
        result["resident_added_after_an_epoch_bytes"] = _resident_bytes() - before
        copy = np.array(rows)  # what a client held before: a private copy of its partition
        result["resident_added_by_a_copy_bytes"] = _resident_bytes() - before
        del copy
    result["peak_rss_bytes"] = _peak_rss_bytes()
    return result


def run_child(args: argparse.Namespace) -> None:
    mode, out = args.child
    if mode == "compute":
        result = child_compute(args.mnist_path, args.cache)
    elif mode == "kymatio":
        result = child_kymatio(args.mnist_path, args.baseline_images)
    else:
        result = child_open(args.mnist_path, args.cache, args.splits)
    Path(out).write_text(json.dumps(result))


def in_child(mode: str, *extra: str) -> dict[str, Any]:
    """Run this script's ``mode`` in a fresh Python process; its figures."""
    with tempfile.TemporaryDirectory(prefix="aureon-features-") as tmp:
        out = Path(tmp) / "out.json"
        subprocess.run([sys.executable, __file__, "--child", mode, str(out), *extra], check=True, cwd=REPO)
        return json.loads(out.read_text())  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the run
def measure_run(mnist: Path, cache: Path) -> dict[str, Any]:
    """A 5-client mnist_dp round on the warm cache, with its process tree's memory sampled."""
    with tempfile.TemporaryDirectory(prefix="aureon-features-run-") as run_dir:
        command = [
            sys.executable,
            "-m",
            "simulations.run",
            "+experiment=mnist_dp",
            f"dataset.path={mnist.expanduser().resolve()}",
            "num_rounds=1",
            f"features.cache_dir={cache}",
            f"hydra.run.dir={run_dir}",
        ]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO)
        with TreeMemorySampler(process.pid, interval=0.2) as sampler:
            code = process.wait()
        seconds = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"{' '.join(command)} exited with status {code}")
        results = json.loads((Path(run_dir) / "results.json").read_text())
    return {
        "command": "python -m simulations.run +experiment=mnist_dp dataset.path=MNIST num_rounds=1",
        "wall_seconds": seconds,
        "test_accuracy": (results.get("final") or {}).get("test_accuracy"),
        "peak_rss_bytes": sampler.peak_rss,
        "peak_pss_bytes": sampler.peak_pss,
        "peak_processes": sampler.peak_processes,
    }


def report(data: dict[str, Any]) -> str:
    compute, kymatio = data["compute"], data["kymatio"]
    rows = [
        [
            "AUREON (batched paths, all cores)",
            compute["images"],
            fmt(compute["seconds"], ".1f"),
            fmt(compute["cpu_seconds"], ".1f"),
            fmt(compute["peak_rss_bytes"] / GIB, ".2f"),
        ],
    ]
    if kymatio:
        scaled = " (scaled to 70,000)" if kymatio["images"] != MNIST_IMAGES else ""
        rows.append(
            [
                "kymatio frontend, batches of 1,024 (before)",
                kymatio["images"],
                fmt(kymatio["seconds_for_70000"], ".1f") + scaled,
                fmt(kymatio["cpu_seconds_for_70000"], ".1f") + scaled,
                "-",
            ]
        )
    text = (
        "# Feature cache: full MNIST scattering features (J=2, L=8) and a 5-client run's memory\n\n"
        f"Machine: {data['machine']['cpu_count']} cores; load average {data['load_average_before'][0]:.1f} "
        f"before and {data['load_average_after'][0]:.1f} after (other jobs share the cores, so wall "
        "seconds run long; CPU seconds are user + system time of the process).\n\n"
        "## Computing the features, cold cache\n\n"
        "AUREON's figure is the whole of `prepare_dataset` (read the IDX files, transform "
        "70,000 images, write and checksum both splits); kymatio's is the transform alone.\n\n"
        + markdown_table(["implementation", "images", "wall s", "CPU s", "peak RSS GiB"], rows)
    )
    if kymatio:
        text += (
            f"\nSpeed-up: {kymatio['seconds_for_70000'] / compute['seconds']:.1f}x wall, "
            f"{kymatio['cpu_seconds_for_70000'] / compute['cpu_seconds']:.1f}x CPU.\n"
        )

    def gib(o: dict[str, Any], key: str) -> str:
        return fmt(o[key] / GIB, ".2f") if key in o else "-"

    opened = [
        [
            " + ".join(o["splits"]),
            fmt(o["open_seconds"], ".2f"),
            fmt(o["peak_rss_after_open_bytes"] / GIB, ".2f"),
            gib(o, "client_bytes"),
            {True: "view", False: "copy"}.get(o.get("client_rows_are_a_view"), "-"),
            gib(o, "resident_added_by_take_rows_bytes"),
            gib(o, "resident_added_after_an_epoch_bytes"),
            fmt(o.get("client_epoch_gather_seconds"), ".2f"),
            gib(o, "resident_added_by_a_copy_bytes"),
        ]
        for o in data["open"]
    ]
    header = [
        "splits",
        "open s",
        "RSS after open GiB",
        "client rows GiB",
        "rows are",
        "+RSS take_rows GiB",
        "+RSS after an epoch GiB",
        "epoch gather s",
        "+RSS with a copy GiB",
    ]
    text += (
        "\n## Opening the warm cache (a fresh process each)\n\n"
        "Open = read the index, check each file against its manifest (CRC-32 per 16 MiB "
        "block, on all cores), map it read-only. A client then reads its partition's indices "
        "from the partition cache (client 0 of 5, IID) and takes its rows with `take_rows`: "
        "consecutive rows are a view of the map, nothing copied. Training gathers each batch "
        "from it (`ArrayRows`, one epoch of batches of 512 here) and gives the touched pages back; "
        "the last column is what a private copy of the partition (the previous way) adds.\n\n"
        + markdown_table(header, opened)
    )
    run = data.get("run")
    if run:
        text += (
            "\n## A 5-client round on the warm cache\n\n"
            f"`{run['command']}`: {run['wall_seconds']:.0f} s wall, test accuracy "
            f"{fmt(run['test_accuracy'])}, up to {run['peak_processes']} processes.\n\n"
            + markdown_table(
                ["peak summed RSS GiB", "peak summed PSS GiB"],
                [[fmt(run["peak_rss_bytes"] / GIB, ".2f"), fmt(run["peak_pss_bytes"] / GIB, ".2f")]],
            )
            + "\nRSS counts each mapped page of the feature file in every process that touched it; "
            "PSS divides it among them.\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mnist_argument(parser)
    parser.add_argument(
        "--baseline-images",
        type=int,
        default=10_000,
        help="time kymatio on this many images and scale to 70,000 (default 10,000; 0: all; -1: skip it)",
    )
    parser.add_argument("--skip-run", action="store_true", help="skip the 5-client simulation")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--splits", nargs="*", default=["train", "test"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    data: dict[str, Any] = {"machine": machine(), "load_average_before": os.getloadavg()}
    mnist = ["--mnist-path", str(args.mnist_path)]
    with tempfile.TemporaryDirectory(prefix="aureon-feature-cache-") as cache:
        print("--- computing the features, cold cache", flush=True)
        data["compute"] = in_child("compute", *mnist, "--cache", cache)
        data["open"] = [
            in_child("open", *mnist, "--cache", cache, "--splits", *splits) for splits in (["train", "test"], ["test"])
        ]
        if not args.skip_run:
            print("--- a 5-client mnist_dp round on the warm cache", flush=True)
            data["run"] = measure_run(args.mnist_path, Path(cache))
    if args.baseline_images >= 0:
        print("--- the previous implementation (kymatio's frontend)", flush=True)
        data["kymatio"] = in_child("kymatio", *mnist, "--baseline-images", str(args.baseline_images))
    else:
        data["kymatio"] = None
    data["load_average_after"] = os.getloadavg()
    markdown = report(data)
    json_path, md_path = write(NAME, data, markdown, redact={str(args.mnist_path.resolve()): "MNIST"})
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
