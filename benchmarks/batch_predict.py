"""Batch prediction of 100,000 MNIST rows: ``simulations.predict`` against a bare loop (the limit).

    python -m benchmarks.batch_predict            # the small CNN and the mnist_dp model
    python -m benchmarks.batch_predict --quick    # the small CNN only

The rows are MNIST's 70,000 images (train then test, from the IDX files in
--mnist-path) tiled to 100,000 and saved as one uint8 .npy. Two processes
per model, each timed from start to exit with its peak RSS (``wait4``):
``python -m simulations.predict`` on that file, and a bare loop that loads
the same model, reads the whole tensor into memory and runs the same
standardisation, feature transform and forward pass over it in chunks of the
same size. The bare loop also reports the seconds of the loop alone. Both
get the same torch thread count. Their predictions must agree.
Results: benchmarks/results/batch_predict.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DEFAULT_MNIST, REPO  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402
from benchmarks._served_runs import WORK, served_run  # noqa: E402

ROWS = 100_000
TARGET_RATIO = 1.2
TARGET_CNN_SECONDS = 12.0


def read_idx_images(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if data[:4] != b"\x00\x00\x08\x03":
        raise ValueError(f"{path}: not an IDX file of uint8 images")
    n, height, width = (int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, height * width)


def mnist_rows(mnist: Path, target: Path, rows: int = ROWS) -> tuple[Path, int]:
    """``rows`` MNIST images (train then test, tiled past 70,000) as a uint8 .npy; how many are distinct."""
    parts = []
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        found = [p for p in (mnist / stem, mnist / f"{stem}.gz") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"{mnist}: no {stem}[.gz]; pass --mnist-path")
        parts.append(read_idx_images(found[0]))
    images = np.concatenate(parts)
    if not target.is_file():
        tiled = np.resize(images, (rows, images.shape[1]))  # repeats from the start past 70,000
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, tiled)
    return target, len(images)


def timed(command: list[str]) -> dict[str, Any]:
    """Run ``command``; its wall seconds, peak RSS (MiB, the process and its children) and stdout."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, env=env, text=True)
    if process.stdout is None:
        raise RuntimeError("no pipe to read the command's output from")
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed with exit code {process.returncode}:\n{output}")
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024, "stdout": output}


def bare_loop(run_dir: str, data: str, output: str, threads: int, batch: int) -> None:
    """The limit: the whole tensor in memory, the same standardisation, transform and forward per chunk."""
    import torch

    from aureon.config.serving import ServingConfig
    from aureon.serving.loading import load_served_model

    torch.set_num_threads(threads)
    model = load_served_model(run_dir)
    config = ServingConfig()
    pixels = np.load(data)
    shape = model.info.image_shape
    started = time.perf_counter()
    predictions = np.empty(len(pixels), dtype=np.int64)
    for start in range(0, len(pixels), batch):
        chunk = pixels[start : start + batch].astype(np.float32)
        images = ((chunk / config.uint8_scale - config.uint8_mean) / config.uint8_std).reshape(-1, *shape)
        predictions[start : start + len(chunk)] = model.logits(images).argmax(axis=1)
    loop_seconds = time.perf_counter() - started
    np.save(output, predictions)
    print(json.dumps({"loop_seconds": loop_seconds}))


def bench_model(name: str, *, data: Path, scratch: Path, threads: int, batch: int) -> list[dict[str, Any]]:
    run_dir = served_run(name)
    out_predict, out_bare = scratch / f"{name}-predict.npy", scratch / f"{name}-bare.npy"
    predict = timed(
        [
            sys.executable,
            "-m",
            "simulations.predict",
            f"run_dir={run_dir}",
            f"input={data}",
            f"output={out_predict}",
            "progress=false",
            f"serving.torch_threads={threads}",
            f"serving.predict_batch={batch}",
        ]
    )
    bare = timed(
        [
            sys.executable,
            "-m",
            "benchmarks.batch_predict",
            "--bare-loop",
            str(run_dir),
            str(data),
            str(out_bare),
            str(threads),
            str(batch),
        ]
    )
    loop_seconds = json.loads(bare["stdout"].strip().splitlines()[-1])["loop_seconds"]
    agree = float(np.mean(np.load(out_predict) == np.load(out_bare)))
    if agree != 1.0:
        raise RuntimeError(f"{name}: simulations.predict and the bare loop disagree on {1 - agree:.2%} of rows")
    rows = np.load(out_predict).shape[0]
    return [
        {
            "model": name,
            "runner": "simulations.predict",
            "rows": rows,
            "seconds": predict["seconds"],
            "rows_per_second": rows / predict["seconds"],
            "peak_rss_mib": predict["peak_rss_mib"],
            "loop_seconds": None,
        },
        {
            "model": name,
            "runner": "bare loop",
            "rows": rows,
            "seconds": bare["seconds"],
            "rows_per_second": rows / bare["seconds"],
            "peak_rss_mib": bare["peak_rss_mib"],
            "loop_seconds": loop_seconds,
        },
    ]


def render(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = [
        "# Batch prediction: `simulations.predict` vs a bare loop\n",
        f"`python -m benchmarks.batch_predict{' --quick' if settings['quick'] else ''}`: {settings['rows']:,} rows "
        f"(MNIST's {settings['distinct']:,} images tiled) from one uint8 .npy, chunks of {settings['batch']}, "
        f"{settings['threads']} torch thread(s), {os.cpu_count()} CPUs. Seconds and peak RSS are per process, "
        "start to exit; the bare loop's own seconds (tensor already in memory) in the last column.\n",
    ]
    table = [
        [
            r["model"],
            r["runner"],
            f"{r['seconds']:.2f}",
            f"{r['rows_per_second']:,.0f}",
            f"{r['peak_rss_mib']:.0f}",
            "-" if r["loop_seconds"] is None else f"{r['loop_seconds']:.2f}",
        ]
        for r in rows
    ]
    lines.append(markdown_table(["model", "runner", "seconds", "rows/s", "peak RSS MiB", "loop s"], table))
    verdicts = []
    for model in dict.fromkeys(r["model"] for r in rows):
        ours = next(r for r in rows if r["model"] == model and r["runner"] == "simulations.predict")
        bare = next(r for r in rows if r["model"] == model and r["runner"] == "bare loop")
        ratio = ours["seconds"] / bare["seconds"]
        verdicts.append(
            [
                model,
                f"{ratio:.2f}x (target <= {TARGET_RATIO}x)",
                f"{ours['seconds'] / bare['loop_seconds']:.2f}x",
                f"{ours['peak_rss_mib'] / bare['peak_rss_mib']:.2f}x",
            ]
        )
    lines.append("\n`simulations.predict` / bare loop:\n")
    lines.append(markdown_table(["model", "seconds (process)", "seconds (vs loop alone)", "peak RSS"], verdicts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--bare-loop"]:
        run_dir, data, output, threads, batch = argv[1:6]
        bare_loop(run_dir, data, output, int(threads), int(batch))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the small CNN only")
    parser.add_argument("--mnist-path", type=Path, default=DEFAULT_MNIST, help="folder of MNIST's IDX files")
    parser.add_argument("--models", nargs="+", choices=["cnn", "mnist_dp"], default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all CPUs)")
    parser.add_argument("--batch", type=int, default=1024, help="rows per forward pass (serving.predict_batch)")
    args = parser.parse_args(argv)
    models = args.models or (["cnn"] if args.quick else ["cnn", "mnist_dp"])
    scratch = WORK / "batch_predict"
    data, distinct = mnist_rows(args.mnist_path, scratch / f"mnist-{ROWS}.npy")
    rows: list[dict[str, Any]] = []
    for name in models:
        rows += bench_model(name, data=data, scratch=scratch, threads=args.threads, batch=args.batch)
        for r in rows[-2:]:
            print(
                f"{r['model']:9s} {r['runner']:20s} {r['seconds']:7.2f} s  {r['rows_per_second']:9,.0f} rows/s  "
                f"peak RSS {r['peak_rss_mib']:6.0f} MiB",
                flush=True,
            )
    settings = {"quick": args.quick, "rows": ROWS, "distinct": distinct, "threads": args.threads, "batch": args.batch}
    report = {"settings": settings, "machine": machine(), "rows": rows}
    json_path, md_path = write("batch_predict", report, render(rows, settings), redact={str(REPO): "<repo>"})
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
