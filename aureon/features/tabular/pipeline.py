"""A fitted feature pipeline: the same numbers turn every client's table into the same columns.

Impute numeric columns, add generated columns, scale (or bin) the numeric
ones, one-hot the categorical ones against a shared vocabulary. Saved as a
JSON file plus .npy arrays (no pickle), each written atomically, the JSON last
and holding the arrays' SHA-256, so a directory left half-written or edited
is refused on load rather than applied.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aureon.data.tables import Table
from aureon.exceptions import DataError
from aureon.features.tabular.categories import MISSING_TOKEN, OTHER_TOKEN, one_hot
from aureon.features.tabular.generation import Candidate, compute, name
from aureon.files import atomic_write_bytes, atomic_write_text

FORMAT = 1
PIPELINE_FILE = "pipeline.json"
ARRAYS = ("impute", "offset", "scale", "edges")


@dataclass(frozen=True)
class FittedPipeline:
    """Every number the transformation needs; ``transform`` is a pure function of these and the table."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    impute: np.ndarray  # per numeric column
    offset: np.ndarray  # per numeric + generated column
    scale: np.ndarray
    generated: tuple[Candidate, ...] = ()
    edges: np.ndarray | None = None  # (numeric + generated, bins + 1): values become bin / (bins - 1)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    categorical_fill: dict[str, str] = field(default_factory=dict)  # missing -> this category
    fitted_on: dict[str, Any] = field(default_factory=dict)  # how: clients, mode, epsilon (for people)
    target: tuple[float, float] | None = None  # a regression target's (offset, scale); None: class labels
    classes: tuple[str, ...] | None = None  # the class names, in output order (None: regression or not recorded)

    def targets(self, values: np.ndarray) -> np.ndarray:
        """What the model learns to predict: a regression target standardized, class indices as given.

        A target of mean 150 and std 77 (diabetes) would take DP-SGD's clipped
        steps hundreds of rounds to reach; standardized, R^2 is the same.
        """
        if self.target is None:
            return values
        offset, scale = self.target
        return ((np.asarray(values, dtype=np.float64) - offset) / scale).astype(np.float32)

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        """A regression model's outputs in the target's own units (the inverse of ``targets``)."""
        if self.target is None:
            return outputs
        offset, scale = self.target
        return np.asarray(outputs, dtype=np.float64) * scale + offset

    def output_columns(self) -> list[str]:
        numeric = [*self.numeric, *(name(spec, self.numeric) for spec in self.generated)]
        categorical = [f"{c}={v}" for c in self.categorical for v in [*self.vocabularies[c], OTHER_TOKEN]]
        return numeric + categorical

    def transform(self, table: Table) -> np.ndarray:
        """The model's input for ``table``: (rows, len(output_columns())) float32."""
        if table.numeric != self.numeric or table.categorical != self.categorical:
            raise DataError(
                f"the feature pipeline was fitted on numeric {list(self.numeric)} and categorical "
                f"{list(self.categorical)}, but table {table.name!r} has numeric {list(table.numeric)} "
                f"and categorical {list(table.categorical)}"
            )
        values = table.features[list(self.numeric)].to_numpy(dtype=np.float64)
        values = np.where(np.isnan(values), self.impute[None, :], values)
        if self.generated:
            values = np.concatenate([values, compute(values, self.generated)], axis=1)
        values = (values - self.offset) / self.scale
        if self.edges is not None:
            bins = self.edges.shape[1] - 1
            scaled_edges = (self.edges - self.offset[:, None]) / self.scale[:, None]
            index = np.stack(
                [
                    np.clip(np.searchsorted(scaled_edges[j, 1:-1], values[:, j], side="right"), 0, bins - 1)
                    for j in range(values.shape[1])
                ],
                axis=1,
            )
            values = index / max(bins - 1, 1)
        parts = [values]
        for column in self.categorical:
            series = table.features[column]
            fill = self.categorical_fill.get(column)
            if fill is not None:
                series = series.where(series.notna(), fill)
            parts.append(one_hot(series, self.vocabularies[column]))
        return np.concatenate(parts, axis=1).astype(np.float32)

    # ---------------------------------------------------------------- files
    def document(self) -> dict[str, Any]:
        """Everything but the arrays, as JSON-ready values (the saved file and the message send this)."""
        return {
            "format": FORMAT,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "generated": [list(spec) for spec in self.generated],
            "vocabularies": self.vocabularies,
            "categorical_fill": self.categorical_fill,
            "missing_token": MISSING_TOKEN,
            "fitted_on": self.fitted_on,
            "output_columns": self.output_columns(),
            "target": None if self.target is None else list(self.target),
            "classes": None if self.classes is None else list(self.classes),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The pipeline's arrays by name (``ARRAYS``; an absent one is left out), as float64."""
        named = {key: getattr(self, key) for key in ARRAYS}
        return {key: np.asarray(value, dtype=np.float64) for key, value in named.items() if value is not None}

    @classmethod
    def from_parts(cls, document: dict[str, Any], arrays: dict[str, np.ndarray], *, where: str) -> FittedPipeline:
        """The pipeline ``document()`` and ``arrays()`` describe; ``where`` names their source in errors."""
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise DataError(f"{where}: not a format-{FORMAT} feature pipeline")
        impute, offset, scale = arrays.get("impute"), arrays.get("offset"), arrays.get("scale")
        if impute is None or offset is None or scale is None:
            raise DataError(f"{where}: lists no impute/offset/scale arrays")
        classes = document.get("classes")
        try:
            return cls(
                numeric=tuple(document["numeric"]),
                categorical=tuple(document["categorical"]),
                impute=impute,
                offset=offset,
                scale=scale,
                generated=tuple((str(op), int(a), int(b)) for op, a, b in document["generated"]),
                edges=arrays.get("edges"),
                vocabularies={str(k): [str(v) for v in vs] for k, vs in document["vocabularies"].items()},
                categorical_fill={str(k): str(v) for k, v in document["categorical_fill"].items()},
                fitted_on=dict(document.get("fitted_on", {})),
                target=_target(document.get("target"), where),
                classes=None if classes is None else tuple(str(c) for c in classes),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{where}: not a readable feature pipeline ({type(error).__name__}: {error})") from error

    def save(self, directory: Path | str) -> Path:
        """Write the pipeline into ``directory`` (created); returns the JSON file's path."""
        folder = Path(directory)
        digests: dict[str, str] = {}
        for key, array in self.arrays().items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            data = buffer.getvalue()
            atomic_write_bytes(folder / f"{key}.npy", data)
            digests[key] = hashlib.sha256(data).hexdigest()
        document = {**self.document(), "arrays": digests}
        return atomic_write_text(folder / PIPELINE_FILE, json.dumps(document, indent=1, sort_keys=True))

    @classmethod
    def load(cls, directory: Path | str) -> FittedPipeline:
        """The pipeline ``save`` wrote; a missing, altered or half-written file is a DataError."""
        folder = Path(directory)
        path = folder / PIPELINE_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: not a readable feature pipeline ({error})") from error
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise DataError(f"{path}: not a format-{FORMAT} feature pipeline")
        arrays: dict[str, np.ndarray] = {}
        for key in ARRAYS:
            digest = document["arrays"].get(key)
            if digest is None:
                continue
            file = folder / f"{key}.npy"
            try:
                data = file.read_bytes()
            except OSError as error:
                raise DataError(f"{file}: missing from the feature pipeline ({error})") from error
            if hashlib.sha256(data).hexdigest() != digest:
                raise DataError(f"{file}: does not match {path} (edited, or written by another fit)")
            arrays[key] = np.load(io.BytesIO(data), allow_pickle=False)
        return cls.from_parts(document, arrays, where=str(path))


def _target(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and float(value[1]) > 0):
        raise DataError(f"{where}: 'target' must be [offset, scale > 0] or null, got {value!r}")
    return float(value[0]), float(value[1])
