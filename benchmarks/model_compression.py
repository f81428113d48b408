"""Model compression after training: pruning, int8 quantization and distillation.

For each model (the MNIST CNN and MLPs), trains it on MNIST (or takes a
finished run given with --run-dir), then runs
``python -m simulations.compress``'s code for each method and tabulates file
size, weights, held-out test accuracy and CPU latency at batch 1 and 64
against the original.

    python benchmarks/model_compression.py --mnist-path /path/to/mnist
    python benchmarks/model_compression.py --run-dir cnn=outputs/2026-01-01/12-00-00

Targets (issue 5): pruning to 70% sparsity with <= 0.5 points lost and a file
<= half the size; int8 quantization >= 3.5x smaller, <= 0.5 points lost and
>= 1.5x faster at batch 64; a distilled student <= 1/4 of the parameters
with <= 1 point lost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import default_mnist_path  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

MODELS: dict[str, list[str]] = {
    "cnn": ["model=cnn"],
    "mlp": ["model=mlp"],
    "mlp_wide": ["model=mlp", "model.hidden=[1024,512]"],
}
METHODS = ("prune", "quantize", "distill")


def _train(name: str, args: argparse.Namespace, scratch: Path) -> tuple[Path, str]:
    """A finished run for model ``name``: trained here unless --run-dir gave one."""
    given = dict(item.split("=", 1) for item in args.run_dir)
    if name in given:
        return Path(given[name]), f"the finished run {given[name]}"
    from aureon.launch.run_config import compose_config
    from aureon.launch.simulation import run_experiment

    data = ["dataset=mnist", f"dataset.path={args.mnist_path}"] if args.mnist_path else ["dataset=mnist_subset"]
    overrides = [
        *data,
        *MODELS[name],
        "strategy=centralized",
        "privacy=none",
        f"num_rounds={args.epochs}",
        "train.local_epochs=1",
        "train.lr=0.05",
        "train.momentum=0.9",
    ]
    run_dir = scratch / name
    run_experiment(compose_config(overrides), run_dir)
    return run_dir, "trained here: " + " ".join(overrides)


def _targets(method: str, r: dict[str, Any]) -> dict[str, bool]:
    if method == "prune":
        return {"points_lost<=0.5": r["points_lost"] <= 0.5, "file<=half": r["x_smaller_file"] >= 2.0}
    if method == "quantize":
        return {
            "x_smaller>=3.5": r["x_smaller_file"] >= 3.5,
            "points_lost<=0.5": r["points_lost"] <= 0.5,
            "x_faster_b64>=1.5": r["x_faster_b64"] >= 1.5,
        }
    return {"weights<=1/4": r["weight_fraction"] <= 0.25, "points_lost<=1": r["points_lost"] <= 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-path", default=default_mnist_path())
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--run-dir", nargs="*", default=[], metavar="MODEL=PATH")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per model")
    parser.add_argument(
        "--finetune-epochs", type=int, default=1, help="epochs on the server's public half after pruning"
    )
    parser.add_argument("--quantization", choices=["static", "dynamic"], default="static")
    parser.add_argument("--distill-epochs", type=int, default=30)
    parser.add_argument("--latency-rounds", type=int, default=30)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for training (more than the free cores only spin)"
    )
    parser.add_argument("--name", default="model_compression")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    from aureon.config import ModelCompressionJob
    from aureon.model_compression.model_job import compress_run

    report: dict[str, Any] = {}
    sections = []
    scratch_dir = ""
    with tempfile.TemporaryDirectory(prefix="aureon-modelcomp-") as scratch:
        scratch_dir = scratch
        for name in args.models:
            started = time.monotonic()
            run_dir, source = _train(name, args, Path(scratch))
            results = {}
            for method in args.methods:
                job = ModelCompressionJob(
                    run_dir=str(run_dir),
                    method=method,
                    finetune_epochs=args.finetune_epochs,
                    quantization=args.quantization,
                    distill_epochs=args.distill_epochs,
                    latency_rounds=args.latency_rounds,
                )
                result = compress_run(job)
                result["targets"] = _targets(method, result)
                results[method] = result
                print(
                    f"[{name}/{method}] {result['x_smaller_file']:.2f}x smaller, "
                    f"{result['points_lost']:+.2f} points, {result['x_faster_b64']:.2f}x at b64",
                    flush=True,
                )
            report[name] = {"source": source, "seconds": time.monotonic() - started, "methods": results}
            original = results[args.methods[0]]["rows"][0]
            rows = [
                [
                    "original",
                    f"{original['file_bytes'] / 1024:.1f}",
                    "1.00x",
                    f"{original['nonzero_weights']:,}",
                    f"{100 * original['test_accuracy']:.2f}",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            ]
            for method, r in results.items():
                new = r["rows"][1]
                met = r["targets"]
                rows.append(
                    [
                        {"prune": "pruned 70%", "quantize": f"int8 {args.quantization}", "distill": "distilled"}[
                            method
                        ],
                        f"{new['file_bytes'] / 1024:.1f}",
                        f"{r['x_smaller_file']:.2f}x",
                        f"{new['nonzero_weights']:,} ({r['weight_fraction']:.0%})",
                        f"{100 * new['test_accuracy']:.2f}",
                        f"{r['points_lost']:+.2f}",
                        f"{r['x_faster_b1']:.2f}x",
                        f"{r['x_faster_b64']:.2f}x",
                        f"{r['agreement_with_original']:.1%}",
                        ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()),
                    ]
                )
            header = [
                "model",
                "file KB",
                "smaller",
                "non-zero weights",
                "held-out acc %",
                "points lost",
                "faster b1",
                "faster b64",
                "same predictions",
                "targets",
            ]
            sections.append(f"## {name}\n\nModel: {source}.\n\n" + markdown_table(header, rows))

    markdown = (
        "# Model compression after training\n\n"
        "Accuracy is on the second half of the MNIST test split (5,000 images); the first half "
        "is the server's public data for pruning's fine-tuning (epochs: "
        f"{args.finetune_epochs}) and distillation ({args.distill_epochs} epochs). Latency: "
        "per forward pass, best of the timed rounds, 1 CPU thread, each compressed model "
        "interleaved with the original in the same session; ratios, not seconds, are the "
        "result.\n\n" + "\n".join(sections)
    )
    data = {"machine": machine(), "args": vars(args), "models": report}
    redact = {args.mnist_path: "$AUREON_MNIST_PATH", scratch_dir: "<scratch run dir>"}
    json_path, md_path = write(args.name, data, markdown, redact=redact)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
