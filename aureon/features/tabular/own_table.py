"""A client's own table in deployment (``dataset.per_client=true``): its file, its schema, the run's pipeline.

Each client process is started with its own file (``data.path``) and the
server holds no rows: it asks every client for its columns, fits the pipeline
over the Message API and sends it before round 1 (``query.tabular_pipeline``).
The client keeps that pipeline in its state directory, one per run, and
applies it to its own rows for training and evaluation, so every client's
inputs are the same columns computed with the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import Context

from aureon import keys
from aureon.config.dataset import DatasetConfig, TableFileConfig
from aureon.data import Dataset
from aureon.data.tables import Table, load_table, split_table
from aureon.exceptions import DataError
from aureon.features.tabular.pipeline import FittedPipeline

PIPELINES_DIR = "feature-pipelines"


def per_client_tables(dataset: DatasetConfig) -> bool:
    """Whether each client brings its own table file (and the server has none)."""
    return isinstance(dataset, TableFileConfig) and dataset.per_client


def own_tables(dataset: DatasetConfig, seed: int) -> tuple[Table, Table]:
    """This client's file, checked and typed, split into its training and held-out rows."""
    if not isinstance(dataset, TableFileConfig) or not dataset.path:
        raise DataError(
            f"dataset.per_client=true: this client has no table of its own (dataset.path={dataset.path!r}); "
            "start it with its file, e.g. `python -m clients ... data.path=/data/mine.csv`"
        )
    return split_table(load_table(dataset), test_fraction=dataset.test_fraction, seed=seed)


@dataclass(frozen=True)
class TableSchema:
    """What a client tells the server about its table: column names and kinds, task, class names (no rows)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    task: str
    classes: tuple[str, ...] = ()  # the labels this client holds (classification only)


def schema_of(train: Table, test: Table) -> TableSchema:
    classes: tuple[str, ...] = ()
    if train.task == "classification":
        labels = np.concatenate([t.target.astype(str).to_numpy() for t in (train, test)])
        classes = tuple(str(c) for c in np.unique(labels))
    return TableSchema(numeric=train.numeric, categorical=train.categorical, task=train.task, classes=classes)


# ---------------------------------------------------------------- the run's pipeline, kept by the client
def _state_dir(context: Context) -> Path:
    value = str(context.node_config.get(keys.NODE_STATE_DIR, "") or "")
    if not value:
        raise DataError(
            f"this client has no state directory (node config {keys.NODE_STATE_DIR!r}) to keep the run's "
            "feature pipeline in; start it with `python -m clients --state-dir DIR`"
        )
    return Path(value)


def pipeline_dir(context: Context) -> Path:
    """Where this client keeps the pipeline of the run ``context`` belongs to."""
    return _state_dir(context) / PIPELINES_DIR / f"run-{context.run_id}"


def keep_pipeline(context: Context, pipeline: FittedPipeline) -> Path:
    """Store the run's pipeline (atomic files, checked on load); returns its folder."""
    folder = pipeline_dir(context)
    pipeline.save(folder)
    return folder


def run_pipeline(context: Context) -> FittedPipeline:
    """The pipeline the server sent for this run, or a DataError saying it never came."""
    folder = pipeline_dir(context)
    if not folder.is_dir():
        raise DataError(
            f"no feature pipeline for run {context.run_id} in {folder}: the server sends it before round 1 "
            f"({keys.TABULAR_PIPELINE}); a client that joins later is sent it before the next round"
        )
    return FittedPipeline.load(folder)


def targets_of(table: Table, pipeline: FittedPipeline) -> np.ndarray:
    """``table``'s targets as the model learns them: class indices in the pipeline's order, or scaled values."""
    if table.task == "regression":
        return pipeline.targets(table.target.to_numpy(dtype=np.float32))
    if pipeline.classes is None:
        raise DataError("the run's feature pipeline names no classes, but this client's target is a class label")
    classes = np.asarray(pipeline.classes)
    labels = table.target.astype(str).to_numpy()
    unknown = sorted(set(labels.tolist()) - set(classes.tolist()))
    if unknown:
        raise DataError(
            f"this client's target holds {unknown[:5]}, which the run's classes {list(classes[:20])} do not name"
        )
    return np.searchsorted(classes, labels).astype(np.int64)


def own_dataset(dataset: DatasetConfig, seed: int, pipeline: FittedPipeline) -> Dataset:
    """This client's rows as the model sees them: its own split, transformed by the run's pipeline."""
    train, test = own_tables(dataset, seed)
    if train.task != ("regression" if pipeline.target is not None else "classification"):
        raise DataError(f"this client's target is a {train.task} target, the run's pipeline was fitted for another")
    num_classes = 1 if train.task == "regression" else len(pipeline.classes or ())
    return Dataset(
        pipeline.transform(train),
        targets_of(train, pipeline),
        pipeline.transform(test),
        targets_of(test, pipeline),
        num_classes=num_classes,
        task=train.task,
    )
