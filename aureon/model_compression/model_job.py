"""Compress a finished run's model (prune, quantize or distill) and tabulate the result.

Reads the run directory that aureon.tracking.RunTracker wrote (config.yaml,
model.pt), writes the compressed model beside model.pt, and a table
``compression_<method>.json`` / ``.md`` comparing it with the original:
file size, weights, test accuracy and CPU latency at batch 1 and 64.

The server may use its own data, never a client's: the test split it already
holds for evaluation. Its first half (public) fine-tunes and distils; its
second half (held out) measures every accuracy in the table, original and
compressed alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aureon.config import DatasetConfig, FeaturesConfig, ModelCompressionJob, ModelConfig, TrainConfig
from aureon.exceptions import ConfigError
from aureon.features import prepare_dataset
from aureon.model_compression.distillation import count_parameters, distill, student_config
from aureon.model_compression.measure import accuracy, agreement, count_weights, latencies_ms
from aureon.model_compression.model_io import load_into, load_state_file
from aureon.model_compression.pruning import prune_global_magnitude, weight_sparsity
from aureon.model_compression.quantization import quantize_model_int8, save_quantized
from aureon.model_compression.run_config import read_run_config
from aureon.model_compression.sparse_io import save_sparse
from aureon.models import build_model


@dataclass(frozen=True)
class ServerData:
    """The test split cut in two: public (to fine-tune and distil on) and held out."""

    x_public: np.ndarray
    y_public: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray


def split_server_data(x_test: np.ndarray, y_test: np.ndarray) -> ServerData:
    half = len(y_test) // 2
    return ServerData(x_test[:half], y_test[:half], x_test[half:], y_test[half:])


@dataclass(frozen=True)
class FinishedRun:
    """What a compression job needs from a finished run's folder."""

    dataset: DatasetConfig
    features: FeaturesConfig
    model: ModelConfig
    seed: int
    state: dict[str, torch.Tensor]


def compressed_model_name(method: str) -> str:
    """model.<method>.pt (torch.save), or model.quantize.bin (aureon.model_compression.int8_io)."""
    return f"model.{method}.bin" if method == "quantize" else f"model.{method}.pt"


def load_run(run_dir: Path) -> FinishedRun:
    """The dataset, features and model configs, seed and final weights of a finished run."""
    config_path, model_path = run_dir / "config.yaml", run_dir / "model.pt"
    for path in (config_path, model_path):
        if not path.is_file():
            raise ConfigError(
                f"run_dir={str(run_dir)!r} must be a finished run's folder holding config.yaml "
                f"and model.pt; {path.name} is missing"
            )
    typed, seed = read_run_config(config_path)
    return FinishedRun(
        dataset=typed["dataset"],
        features=typed["features"],
        model=typed["model"],
        seed=seed,
        state=load_state_file(model_path),
    )


def _builder(model_config: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int):
    def build(config: ModelConfig = model_config) -> nn.Module:
        return build_model(config, input_shape=input_shape, num_classes=num_classes, seed=seed)

    return build


def compress(
    method: str,
    teacher: nn.Module,
    model_config: ModelConfig,
    data: ServerData,
    job: ModelCompressionJob,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    out_path: Path,
) -> tuple[nn.Module, int, dict[str, Any]]:
    """(compressed model, its file size in bytes, what was done) for one method."""
    build = _builder(model_config, input_shape, num_classes, job.seed)
    if method == "prune":
        model = build()
        model.load_state_dict(teacher.state_dict())
        fine_tune = None
        if job.finetune_epochs > 0:
            fine_tune = TrainConfig(local_epochs=job.finetune_epochs, batch_size=64, lr=job.finetune_lr, momentum=0.9)
        prune_global_magnitude(
            model, sparsity=job.sparsity, x=data.x_public, y=data.y_public, fine_tune=fine_tune, seed=job.seed
        )
        size = save_sparse(model.state_dict(), out_path)
        return (
            model.eval(),
            size,
            {
                "sparsity_target": job.sparsity,
                "weight_sparsity": weight_sparsity(model),
                "finetune_epochs": job.finetune_epochs,
                "storage": "bitmask + float32 non-zeros per tensor (aureon.model_compression.sparse_io)",
            },
        )
    if method == "quantize":
        model = quantize_model_int8(teacher, job.quantization, data.x_public)
        size = save_quantized(model, out_path)
        scheme = {
            "static": "static int8 (FX graph mode): convs, Linear layers and activations, "
            "per-channel weight scales, calibrated on the server's public half",
            "dynamic": "dynamic int8: Linear layers only",
        }[job.quantization]
        return (
            model,
            size,
            {
                "scheme": scheme,
                "storage": "int8 values + scales, one deflated file (aureon.model_compression.int8_io)",
            },
        )
    if method == "distill":
        small = student_config(model_config, max_fraction=job.student_fraction, build=build)
        student = build(small)
        distill(
            teacher,
            student,
            data.x_public,
            data.y_public,
            epochs=job.distill_epochs,
            lr=job.distill_lr,
            temperature=job.temperature,
            alpha=job.alpha,
            seed=job.seed,
        )
        torch.save(student.state_dict(), out_path)
        return (
            student,
            out_path.stat().st_size,
            {
                "student": asdict(small),
                "student_parameters": count_parameters(student),
                "teacher_parameters": count_parameters(teacher),
                "epochs": job.distill_epochs,
                "temperature": job.temperature,
                "alpha": job.alpha,
            },
        )
    raise ConfigError(f"method must be one of 'prune', 'quantize', 'distill', got {method!r}")


def _row(name: str, model: nn.Module, file_bytes: int, data: ServerData) -> dict[str, Any]:
    weights = count_weights(model)
    return {
        "model": name,
        "file_bytes": file_bytes,
        "weights": weights.total,
        "nonzero_weights": weights.nonzero,
        "test_accuracy": accuracy(model, data.x_eval, data.y_eval),
    }


def compare(
    original: nn.Module,
    original_bytes: int,
    compressed: nn.Module,
    compressed_bytes: int,
    data: ServerData,
    *,
    latency_rounds: int,
) -> dict[str, Any]:
    """Both rows of the table plus the ratios (compressed against original)."""
    rows = [_row("original", original, original_bytes, data), _row("compressed", compressed, compressed_bytes, data)]
    sample = torch.from_numpy(data.x_eval[:64])
    for batch in (1, 64):
        timing = latencies_ms({"original": original, "compressed": compressed}, sample[:batch], rounds=latency_rounds)
        rows[0][f"latency_ms_b{batch}"] = timing["original"]
        rows[1][f"latency_ms_b{batch}"] = timing["compressed"]
    base, new = rows
    return {
        "rows": rows,
        "x_smaller_file": base["file_bytes"] / new["file_bytes"],
        "weight_fraction": new["nonzero_weights"] / base["nonzero_weights"],
        "points_lost": 100 * (base["test_accuracy"] - new["test_accuracy"]),
        "x_faster_b1": base["latency_ms_b1"] / new["latency_ms_b1"],
        "x_faster_b64": base["latency_ms_b64"] / new["latency_ms_b64"],
        "agreement_with_original": agreement(original, compressed, data.x_eval),
    }


def markdown(result: dict[str, Any]) -> str:
    """The table as Markdown, one row per model and a line of ratios."""
    head = (
        "| model | file (KB) | weights | non-zero | test acc % | ms @ batch 1 | ms @ batch 64 |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['model']} | {r['file_bytes'] / 1024:.1f} | {r['weights']} | {r['nonzero_weights']} "
        f"| {100 * r['test_accuracy']:.2f} | {r['latency_ms_b1']:.3f} | {r['latency_ms_b64']:.3f} |"
        for r in result["rows"]
    ]
    ratios = (
        f"\n{result['x_smaller_file']:.2f}x smaller file, {result['weight_fraction']:.1%} of the "
        f"non-zero weights, {result['points_lost']:+.2f} points lost, "
        f"{result['x_faster_b1']:.2f}x / {result['x_faster_b64']:.2f}x faster at batch 1 / 64, "
        f"{result['agreement_with_original']:.1%} same predictions as the original.\n"
    )
    return f"### {result['method']}\n\n" + head + "\n".join(lines) + "\n" + ratios


def compress_run(job: ModelCompressionJob) -> dict[str, Any]:
    """Compress ``job.run_dir``'s model with ``job.method``; write the model and the table."""
    job.validate()
    run_dir = Path(job.run_dir)
    run = load_run(run_dir)
    model_config, seed, state = run.model, run.seed, run.state
    dataset = prepare_dataset(run.dataset, seed, run.features)
    data = split_server_data(dataset.x_test, dataset.y_test)
    build = _builder(model_config, dataset.input_shape, dataset.num_classes, seed)
    teacher = load_into(build(), state, run_dir / "model.pt")
    teacher.eval()
    out_path = run_dir / compressed_model_name(job.method)
    compressed, size, details = compress(
        job.method,
        teacher,
        model_config,
        data,
        job,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        out_path=out_path,
    )
    public, held_out = len(data.y_public), len(data.y_eval)
    result = {
        "method": job.method,
        "run_dir": str(run_dir),
        "model_file": out_path.name,
        "model": model_config._target_,
        "details": details,
        "data": {
            "public": f"test split [0, {public}): fine-tuning / distillation",
            "held_out": f"test split [{public}, {public + held_out}): every accuracy",
        },
        "latency": "ms per forward pass, best of latency_rounds rounds, 1 CPU thread, interleaved with the original",
        **compare(
            teacher, (run_dir / "model.pt").stat().st_size, compressed, size, data, latency_rounds=job.latency_rounds
        ),
    }
    (run_dir / f"compression_{job.method}.json").write_text(json.dumps(result, indent=2) + "\n")
    (run_dir / f"compression_{job.method}.md").write_text(markdown(result))
    return result
