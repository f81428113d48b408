"""What a tabular run predicts, read from its saved feature pipeline: class names or the target's own units.

The pipeline directory (``feature_pipeline/`` beside ``model.pt``) is read with
``FittedPipeline.load``: JSON and ``.npy`` files checked against their
recorded SHA-256, never a pickle. A regression run trained on its target
standardized; its outputs go back to the target's scale through the
pipeline's own ``predictions``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aureon.exceptions import DataError, ModelFileError
from aureon.features.tabular.pipeline import PIPELINE_FILE, FittedPipeline
from aureon.features.tabular.prepare import PIPELINE_DIR
from aureon.serving.inputs import softmax

PREDICTION = "prediction"
PROBABILITY_PREFIX = "p_"


def load_pipeline(run_dir: Path) -> tuple[FittedPipeline, str]:
    """The run's fitted pipeline and the SHA-256 of its pipeline.json; a ModelFileError names what is wrong."""
    folder = Path(run_dir) / PIPELINE_DIR
    if not (folder / PIPELINE_FILE).is_file():
        raise ModelFileError(
            f"{folder / PIPELINE_FILE}: missing; a run with a tabular features strategy writes its fitted "
            "pipeline there, beside model.pt"
        )
    try:
        pipeline = FittedPipeline.load(folder)
    except DataError as err:
        raise ModelFileError(str(err)) from err
    return pipeline, hashlib.sha256((folder / PIPELINE_FILE).read_bytes()).hexdigest()


@dataclass(frozen=True)
class TableTask:
    """The task of a tabular run: its classes (classification) or the target's scaling (regression)."""

    pipeline: FittedPipeline
    classes: tuple[str, ...] | None  # None: regression

    @classmethod
    def of(cls, pipeline: FittedPipeline, *, num_classes: int | None, where: str) -> TableTask:
        if pipeline.target is not None:
            return cls(pipeline, None)
        if pipeline.classes is not None:
            return cls(pipeline, tuple(pipeline.classes))
        if num_classes is None:
            raise ModelFileError(
                f"{where}: the feature pipeline names neither its classes nor a regression target; "
                "pass num_classes=N (the classes are then called 0..N-1)"
            )
        return cls(pipeline, tuple(str(i) for i in range(num_classes)))

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"

    @property
    def outputs(self) -> int:
        """The model's output width: one per class, one for a regression."""
        return 1 if self.classes is None else len(self.classes)

    def columns(self) -> list[dict[str, Any]]:
        """Each input column: its name, kind and, for a categorical one, the categories with their own column."""
        numeric = [{"name": c, "kind": "numeric"} for c in self.pipeline.numeric]
        categorical = [
            {"name": c, "kind": "categorical", "categories": list(self.pipeline.vocabularies.get(c, []))}
            for c in self.pipeline.categorical
        ]
        return numeric + categorical

    def values(self, logits: np.ndarray) -> np.ndarray:
        """A regression model's (n, 1) outputs in the target's units, float64."""
        return np.asarray(self.pipeline.predictions(logits[:, 0]), dtype=np.float64)

    def answer(self, logits: np.ndarray) -> dict[str, Any]:
        """The JSON answer: class names and probabilities in ``classes`` order, or values in the target's units."""
        if self.classes is None:
            return {"predictions": self.values(logits).tolist()}
        names = np.asarray(self.classes, dtype=object)
        return {
            "predictions": names[logits.argmax(axis=1)].tolist(),
            "probabilities": softmax(logits).tolist(),
            "classes": list(self.classes),
        }

    def output_columns(self) -> list[str]:
        """The columns batch prediction adds beside the rows."""
        if self.classes is None:
            return [PREDICTION]
        return [PREDICTION, *(f"{PROBABILITY_PREFIX}{name}" for name in self.classes)]

    def columns_of(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        """``output_columns`` filled for a chunk of rows."""
        if self.classes is None:
            return {PREDICTION: self.values(logits)}
        probabilities = softmax(logits)
        out: dict[str, np.ndarray] = {PREDICTION: np.asarray(self.classes, dtype=object)[logits.argmax(axis=1)]}
        for j, name in enumerate(self.classes):
            out[f"{PROBABILITY_PREFIX}{name}"] = probabilities[:, j]
        return out
