"""Tabular run directories for the serving tests: a tiny model trained for real through the run's own pipeline.

The classification run reads a CSV with missing numbers and a categorical
column holding gaps and a category only a few rows have (breast cancer with
a ``site`` column); the regression run is diabetes, whose target the
pipeline standardizes. Each folder holds what a finished run writes:
config.yaml, model.pt, results.json and feature_pipeline/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from aureon.config.run import AureonConfig
from aureon.data.tables import Table, table_from_frame
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.prepare import PIPELINE_DIR
from aureon.launch.run_config import compose_config
from aureon.models import build_model
from aureon.serving.inputs import softmax
from tests.features.tabular.client_files import TARGET, breast_cancer_frame
from tests.serving.serving_helpers import write_trained_run

SITES_CSV = "sites.csv"
CLASSIFICATION = ["dataset=table", f"dataset.target={TARGET}", "features=onehot", "model=logreg", "privacy=none"]
REGRESSION = ["dataset=diabetes", "features=standardize", "model=logreg", "privacy=none"]


def sites_frame() -> pd.DataFrame:
    """Breast cancer with two gappy numeric columns and a gappy categorical ``site``; ``label`` is the target."""
    return breast_cancer_frame(seed=1)


def write_table_run(run_dir: Path, overrides: list[str], *, epochs: int = 3) -> Path:
    """Train the configured model briefly on the pipeline's rows; write the run's files."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config: AureonConfig = compose_config([*overrides, "num_clients=3", "seed=2"])
    write_trained_run(run_dir, config, epochs=epochs, final={"round": 3, "test_accuracy": 0.9, "epsilon_max": None})
    config.features.save_fitted(config.dataset, config.seed, run_dir)
    return run_dir


def classification_run(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    csv = root / SITES_CSV
    sites_frame().to_csv(csv, index=False)
    return write_table_run(root / "run", [*CLASSIFICATION, f"dataset.path={csv}"])


def regression_run(root: Path) -> Path:
    return write_table_run(root / "run", REGRESSION, epochs=8)


def json_rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The rows as a client sends them: numbers as numbers, categories as strings, a missing value left out."""
    rows = []
    for record in frame.to_dict(orient="records"):
        rows.append({str(k): v for k, v in record.items() if not (isinstance(v, float) and np.isnan(v))})
    return rows


def reference(run_dir: Path, frame: pd.DataFrame, *, target: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, outputs) of ``frame``'s rows computed here, independently of the server: the training
    loader's typing, the saved pipeline's transform, then the model built from model.pt."""
    from aureon.model_compression.run_config import read_run_config

    pipeline = FittedPipeline.load(run_dir / PIPELINE_DIR)
    typed_config, _ = read_run_config(run_dir / "config.yaml")
    table: Table = table_from_frame(
        frame.assign(**{target: 0.0}) if target not in frame else frame,
        name="check",
        target=target,
        task="regression",
        numeric=pipeline.numeric,
        categorical=pipeline.categorical,
    )
    features = pipeline.transform(table)
    outputs = pipeline.target is not None
    model = build_model(
        typed_config["model"],
        input_shape=(features.shape[1],),
        num_classes=1 if outputs else len(pipeline.classes or ()),
        seed=0,
    )
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    model.eval()
    with torch.inference_mode():  # a C-ordered matrix, as every batch is (BLAS sums F-ordered ones differently)
        logits = model(torch.from_numpy(np.ascontiguousarray(features))).float().numpy()
    if outputs:
        return features, np.asarray(pipeline.predictions(logits[:, 0]), dtype=np.float64)
    return features, softmax(logits)
