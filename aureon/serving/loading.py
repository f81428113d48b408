"""A finished run's model, ready to answer requests: weights, feature transform and what it is.

Reads what ``aureon.tracking.RunTracker`` and ``simulations.compress`` write
into a run directory (config.yaml, results.json, model.pt, model.<method>.*)
with safe readers only: ``torch.load(weights_only=True)`` for the float and
pruned models, AUREON's int8 file for the quantized one. A tabular run also
brings its fitted feature pipeline (``feature_pipeline/``, JSON + .npy), which
sizes the model's input and turns request rows into it. A missing or
mismatched file is one ModelFileError line naming it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from aureon.config import FeaturesConfig, ModelConfig, ScatteringFeaturesConfig
from aureon.config.features import TabularFeaturesConfig
from aureon.config.serving import SERVED_MODELS
from aureon.exceptions import ConfigError, ModelFileError

if TYPE_CHECKING:  # the tabular stack (pandas, the pipeline) loads only for a tabular run
    from aureon.serving.table_model import TableTask

MODEL_FILES = {
    "full": "model.pt",
    "quantize": "model.quantize.bin",
    "prune": "model.prune.pt",
    "distill": "model.distill.pt",
}
CHECKSUM_KEY = "model_sha256"  # results.json: the checksum of model.pt as the run wrote it


@dataclass(frozen=True)
class ModelInfo:
    """What /model reports: where the model came from and how good and private it is."""

    run_dir: str
    model: str
    file: str
    round: int | None
    accuracy: float | None
    epsilon: float | None
    checksum: str
    image_shape: tuple[int, ...]
    num_classes: int
    features: str
    task: str = "classification"
    classes: tuple[str, ...] | None = None  # a tabular run's class names (None: image classes 0..n-1, regression)
    columns: tuple[dict[str, Any], ...] | None = None  # a tabular run's input columns (name, kind, categories)
    pipeline_checksum: str | None = None  # SHA-256 of the tabular run's feature_pipeline/pipeline.json

    def to_json(self) -> dict[str, Any]:
        table = {
            "task": self.task,
            "classes": None if self.classes is None else list(self.classes),
            "columns": None if self.columns is None else list(self.columns),
            "pipeline_checksum": self.pipeline_checksum,
        }
        return ({} if self.columns is None else table) | {
            "run": self.run_dir,
            "model": self.model,
            "file": self.file,
            "round": self.round,
            "accuracy": self.accuracy,
            "epsilon": self.epsilon,
            "checksum": self.checksum,
            "input_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "features": self.features,
        }


@dataclass
class ServedModel:
    """The model, the transform its inputs go through, and its description."""

    module: nn.Module
    transform: Callable[[np.ndarray], np.ndarray]
    info: ModelInfo
    model_config: ModelConfig
    features_config: FeaturesConfig = field(repr=False)
    table: TableTask | None = None  # a tabular run: its pipeline and what it predicts

    def logits(self, images: np.ndarray) -> np.ndarray:
        """(n, C, H, W) standardised float32 images -> (n, classes) float32 logits, in this thread.

        A tabular run's rows arrive already through its pipeline: (n, width) float32.
        """
        features = self.transform(images)
        with torch.inference_mode():
            return self.module(torch.from_numpy(features)).float().numpy()

    def answer(self, logits: np.ndarray) -> dict[str, Any]:
        """The JSON answer for a request's rows."""
        if self.table is not None:
            return self.table.answer(logits)
        from aureon.serving.inputs import answer

        return answer(logits)


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def feature_transform(config: FeaturesConfig) -> Callable[[np.ndarray], np.ndarray]:
    """The run's fixed transform, computed per batch of images (no cache: requests are new images).

    It runs on the torch thread count of the moment: the server's ``serving.torch_threads``
    (one by default, beside the event loop), or every thread batch prediction was given.
    """
    if isinstance(config, ScatteringFeaturesConfig):
        from aureon.features.scattering import scattering_batches

        J, orientations = config.J, config.orientations

        def scatter(images: np.ndarray) -> np.ndarray:
            threads = torch.get_num_threads()
            return np.concatenate(list(scattering_batches(images, J=J, orientations=orientations, threads=threads)))

        return scatter
    if config.name == "none" or isinstance(config, TabularFeaturesConfig):  # a table's rows come transformed
        return lambda images: np.ascontiguousarray(images, dtype=np.float32)
    raise ConfigError(
        f"features.name={config.name!r}: serving knows the transforms 'none' and 'scattering' and the tabular pipelines"
    )


def model_input_shape(features: FeaturesConfig, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(features, ScatteringFeaturesConfig):
        from aureon.features.scattering import scattering_shape

        return scattering_shape(image_shape, J=features.J, orientations=features.orientations)
    return image_shape


def _results(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "results.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{path}: not readable JSON ({err})") from err
    return data if isinstance(data, dict) else {}


def _data_shape(run_dir: Path, dataset: Any, seed: int) -> tuple[tuple[int, ...], int]:
    """The image shape and class count of the run's dataset (its loader, test split)."""
    from aureon.data import load_dataset
    from aureon.exceptions import DataError

    try:
        data = load_dataset(dataset, seed)
    except (ConfigError, DataError, OSError) as err:
        raise ConfigError(
            f"{run_dir / 'config.yaml'}: the input shape comes from its dataset ({dataset.name}), which "
            f"cannot be read here ({err}); pass input_shape=[C,H,W] and num_classes=N"
        ) from err
    return tuple(int(s) for s in data.x_test.shape[1:]), int(data.num_classes)


def _compression_details(run_dir: Path, method: str) -> dict[str, Any]:
    path = run_dir / f"compression_{method}.json"
    try:
        details = json.loads(path.read_text(encoding="utf-8"))["details"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelFileError(
            f"{path}: missing or unreadable; it records how {MODEL_FILES[method]} was made "
            f"(run `python -m simulations.compress run_dir={run_dir} method={method}`)"
        ) from err
    if not isinstance(details, dict):
        raise ModelFileError(f"{path}: 'details' must be an object")
    return details


def _build(config: ModelConfig, shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    from aureon.models import build_model

    return build_model(config, input_shape=shape, num_classes=num_classes, seed=seed)


def _load_module(
    run_dir: Path, kind: str, model_config: ModelConfig, shape: tuple[int, ...], num_classes: int, seed: int
) -> tuple[nn.Module, ModelConfig]:
    from aureon.model_compression.model_io import load_into, load_state_file

    path = run_dir / MODEL_FILES[kind]
    if kind == "full":
        return load_into(_build(model_config, shape, num_classes, seed), load_state_file(path), path), model_config
    if kind == "prune":
        from aureon.model_compression.sparse_io import load_sparse

        return load_into(_build(model_config, shape, num_classes, seed), load_sparse(path), path), model_config
    if kind == "distill":
        from omegaconf import OmegaConf

        student = _compression_details(run_dir, "distill").get("student")
        try:
            merged = OmegaConf.merge(OmegaConf.structured(type(model_config)), student)
            small = OmegaConf.to_object(merged)
        except Exception as err:
            raise ModelFileError(f"{run_dir / 'compression_distill.json'}: bad student config ({err})") from err
        if not isinstance(small, ModelConfig):
            raise ModelFileError(f"{run_dir / 'compression_distill.json'}: student is not a model config")
        return load_into(_build(small, shape, num_classes, seed), load_state_file(path), path), small
    from aureon.model_compression.quantization import load_quantized

    scheme_text = str(_compression_details(run_dir, "quantize").get("scheme", ""))
    scheme = "static" if scheme_text.startswith("static") else "dynamic"
    example = np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)
    float_model = _build(model_config, shape, num_classes, seed)
    return load_quantized(float_model, path, scheme=scheme, example_x=example), model_config


def load_served_model(
    run_dir: Path | str,
    *,
    model: str = "full",
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> ServedModel:
    """The ``model`` (full | quantize | prune | distill) of the finished run in ``run_dir``."""
    from aureon.model_compression.run_config import read_run_config

    if model not in SERVED_MODELS:
        raise ConfigError(f"model must be one of {', '.join(map(repr, SERVED_MODELS))}, got {model!r}")
    run_dir = Path(run_dir)
    config_path, path = run_dir / "config.yaml", run_dir / MODEL_FILES[model]
    for needed in (config_path, path):
        if not needed.is_file():
            hint = (
                ""
                if model == "full"
                else f" (make it: python -m simulations.compress run_dir={run_dir} method={model})"
            )
            raise ModelFileError(f"{needed}: missing; run_dir must be a finished run's folder{hint}")
    typed, seed = read_run_config(config_path)
    features, model_config = typed["features"], typed["model"]
    table, pipeline_checksum = None, None
    if isinstance(features, TabularFeaturesConfig):
        from aureon.serving.table_model import TableTask, load_pipeline

        pipeline, pipeline_checksum = load_pipeline(run_dir)
        table = TableTask.of(pipeline, num_classes=num_classes, where=str(run_dir))
        input_shape, num_classes = (len(pipeline.output_columns()),), table.outputs
    if input_shape is None or num_classes is None:
        shape, classes = _data_shape(run_dir, typed["dataset"], seed)
        input_shape, num_classes = input_shape or shape, num_classes or classes
    image_shape = tuple(int(s) for s in input_shape)
    checksum = file_sha256(path)
    results = _results(run_dir)
    recorded = results.get(CHECKSUM_KEY) if model == "full" else None
    if recorded is not None and recorded != checksum:
        raise ModelFileError(
            f"{path}: checksum {checksum[:16]}... differs from {recorded[:16]}... recorded in results.json "
            "(the file changed after the run wrote it)"
        )
    module, used_config = _load_module(
        run_dir, model, model_config, model_input_shape(features, image_shape), int(num_classes), seed
    )
    module.eval()
    final = results.get("final") or {}
    accuracy = final.get("test_accuracy")
    if model != "full":
        rows = _compression_details_rows(run_dir, model)
        accuracy = rows if rows is not None else accuracy
    info = ModelInfo(
        run_dir=str(run_dir),
        model=model,
        file=path.name,
        round=final.get("round"),
        accuracy=accuracy,
        epsilon=final.get("epsilon_max"),
        checksum=checksum,
        image_shape=image_shape,
        num_classes=int(num_classes),
        features=features.name,
        task="classification" if table is None else table.task,
        classes=None if table is None else table.classes,
        columns=None if table is None else tuple(table.columns()),
        pipeline_checksum=pipeline_checksum,
    )
    return ServedModel(
        module=module,
        transform=feature_transform(features),
        info=info,
        model_config=used_config,
        features_config=features,
        table=table,
    )


def _compression_details_rows(run_dir: Path, method: str) -> float | None:
    """The compressed model's held-out accuracy from its compression table, if recorded."""
    try:
        table = json.loads((run_dir / f"compression_{method}.json").read_text(encoding="utf-8"))
        return float(table["rows"][1]["test_accuracy"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
