"""The builder of the tabular features options: split, fit over the run's clients, transform.

In simulation every partition is in this process, so the fit asks each
partition's table with the very functions a client's ClientApp handler runs
(``LocalFederation``); in deployment the server asks the clients over the
Message API (``aureon.features.tabular.messages``) and gets the same pipeline.
Either way the fit is deterministic, so the server and every client process
derive the same pipeline, and ``save_fitted`` writes it beside the model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from aureon.config.dataset import DatasetConfig, TableFileConfig, TabularDatasetConfig
from aureon.config.features import TabularFeaturesConfig
from aureon.data import Dataset, partition_indices
from aureon.data.tables import Table, class_labels, load_table, split_table
from aureon.exceptions import ConfigError
from aureon.features.prepare import DatasetSource, only
from aureon.features.tabular.pipeline import FittedPipeline

PIPELINE_DIR = "feature_pipeline"


def train_test_tables(config: DatasetConfig, seed: int, *, source: DatasetSource | None = None) -> tuple[Table, Table]:
    """The dataset's split as tables; an image dataset becomes a table of its flattened pixels."""
    if isinstance(config, TabularDatasetConfig):  # the table loader's own type, not a dispatch on options
        return split_table(load_table(config), test_fraction=config.test_fraction, seed=seed)
    data = (source or DatasetSource(config, seed)).load()
    return _image_table(config.name, data.x_train, data.y_train), _image_table(config.name, data.x_test, data.y_test)


def _image_table(name: str, x: np.ndarray, y: np.ndarray) -> Table:
    import pandas as pd

    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    columns = [f"x{i}" for i in range(flat.shape[1])]
    return Table(
        name=name,
        features=pd.DataFrame(flat, columns=columns),
        target=pd.Series(y),
        task="classification",
        numeric=tuple(columns),
        categorical=(),
    )


def client_tables(train: Table, config: TabularFeaturesConfig, seed: int) -> list[Table]:
    """The training rows each of the run's clients holds (the partition the training uses)."""
    if config.centralized:
        return [train]
    if config.partition is None or train.task == "regression":
        return [train.take(rows) for rows in np.array_split(np.arange(len(train)), config.clients)]
    (labels,), _ = class_labels(train)
    return [train.take(rows) for rows in partition_indices(labels, config.partition, config.clients, seed)]


def fit_for(config: TabularFeaturesConfig, train: Table, seed: int) -> FittedPipeline:
    from aureon.features.tabular.federation import LocalFederation  # the fit's machinery, not serving's
    from aureon.features.tabular.fit import Columns, fit_pipeline

    federation = LocalFederation(client_tables(train, config, seed))
    columns = Columns(train.numeric, train.categorical, train.task, target=str(train.target.name))
    return fit_pipeline(config, columns, federation, seed=seed)


_FITTED: dict[str, tuple[FittedPipeline, Dataset]] = {}
_KEPT = 2  # fitted pipelines kept per process, newest last


def fitted_dataset(
    dataset: DatasetConfig, seed: int, features: TabularFeaturesConfig
) -> tuple[FittedPipeline, Dataset]:
    """The run's pipeline and the dataset it makes (fitted once per process)."""
    key = repr((dataset, seed, features))
    if key not in _FITTED:
        if isinstance(dataset, TableFileConfig) and dataset.per_client:
            raise ConfigError(
                "dataset.per_client=true: each client reads its own file in deployment (`python -m server` with "
                "`python -m clients ... data.path=<file>`); in simulation the clients share one table, so set "
                "dataset.path and dataset.per_client=false"
            )
        train, test = train_test_tables(dataset, seed)
        pipeline = fit_for(features, train, seed)
        (y_train, y_test), num_classes = class_labels(train, test)
        if train.task == "classification":
            classes = np.unique(np.concatenate([t.target.astype(str).to_numpy() for t in (train, test)]))
            pipeline = replace(pipeline, classes=tuple(str(c) for c in classes))
        data = Dataset(
            pipeline.transform(train),
            pipeline.targets(y_train),
            pipeline.transform(test),
            pipeline.targets(y_test),
            num_classes=num_classes,
            task=train.task,
        )
        _FITTED[key] = (pipeline, data)
        while len(_FITTED) > _KEPT:
            del _FITTED[next(iter(_FITTED))]
    return _FITTED[key]


def fitted(
    config: TabularFeaturesConfig, *, source: DatasetSource, splits: tuple[str, ...], ensure: tuple[str, ...]
) -> Dataset:
    """features=standardize, minmax, impute, onehot, quantile_bins, generate."""
    del ensure
    _, data = fitted_dataset(source.config, source.seed, config)
    return only(data, splits)


def save_fitted(dataset: DatasetConfig, seed: int, features: TabularFeaturesConfig, run_dir: Path) -> Path:
    """Write the run's fitted pipeline into ``run_dir/feature_pipeline`` (JSON + .npy), beside the model."""
    pipeline, _ = fitted_dataset(dataset, seed, features)
    return pipeline.save(Path(run_dir) / PIPELINE_DIR)


STATISTICS_PROTECTS = (
    "each row of each client's training table, in the aggregates it sent to fit the features "
    "(counts, sums, sums of squares, histograms, category counts), against the coordinator and everyone after it"
)


def statistics_guarantee(dataset: DatasetConfig, seed: int, features: TabularFeaturesConfig) -> dict[str, Any]:
    """The results.json entry for the feature fit's releases: their (epsilon, delta), or that they were exact.

    A guarantee separate from DP-SGD's: it covers the statistics the clients
    sent once, before training, not the model updates.
    """
    pipeline, _ = fitted_dataset(dataset, seed, features)
    return guarantee_of(pipeline)


def guarantee_of(pipeline: FittedPipeline) -> dict[str, Any]:
    """``statistics_guarantee`` of a pipeline in hand (deployment: fitted over the Message API)."""
    fitted_on = pipeline.fitted_on
    dp = fitted_on.get("dp")
    entry: dict[str, Any] = {"strategy": fitted_on.get("strategy"), "mode": fitted_on.get("mode")}
    if isinstance(dp, dict):
        return {
            **entry,
            "kind": "DP feature statistics (Gaussian mechanism on each client's aggregates, zCDP accounting)",
            "epsilon": dp["epsilon"],
            "delta": dp["delta"],
            "noise_multiplier": dp["noise_multiplier"],
            "noise": "local entropy on each client",
            "protects": STATISTICS_PROTECTS,
        }
    if fitted_on.get("mode") == "centralized":
        return {**entry, "kind": "none", "released": "the feature fit read the pooled rows (a centralized baseline)"}
    return {
        **entry,
        "kind": "none",
        "released": "exact aggregates of each client's rows (features.dp_epsilon=null): no DP on the feature fit",
    }


def statistics_line(privacy: dict[str, Any]) -> str | None:
    """The terminal summary's line for the feature statistics' guarantee (None: the run fitted none)."""
    entry = privacy.get("feature_statistics") if isinstance(privacy, dict) else None
    if not isinstance(entry, dict):
        return None
    if entry.get("epsilon") is None:
        return f"feature statistics: {entry.get('released', 'no DP')}"
    return (
        f"feature statistics (DP, once before training): epsilon {entry['epsilon']:.3f}, delta {entry['delta']:g}; "
        f"noise added by each client; protects {STATISTICS_PROTECTS}"
    )
