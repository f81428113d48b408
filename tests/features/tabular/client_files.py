"""Per-client CSV files for the deployment tests: breast cancer split over clients, with a category and gaps.

Six numeric columns (two with missing values), a categorical ``site``
correlated with the label (with missing values, and a category only client 0
holds), and the label; the rows are shuffled and split into one file per client.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from aureon.config.dataset import TableFileConfig
from aureon.data.tables import Table
from aureon.features.tabular.own_table import own_tables

NUMERIC = tuple(f"f{i}" for i in range(6))
TARGET = "label"
ONLY_ON_CLIENT_0 = "rare"


def breast_cancer_frame(seed: int = 0) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(data.data[:, : len(NUMERIC)], columns=list(NUMERIC))
    label = data.target.astype(np.int64)
    likely = np.where(label == 1, 0.7, 0.2)
    frame["site"] = np.where(
        rng.random(len(frame)) < likely, "north", np.where(rng.random(len(frame)) < 0.5, "south", "east")
    )
    frame.loc[rng.random(len(frame)) < 0.05, "f0"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.05, "f3"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.03, "site"] = np.nan
    frame[TARGET] = label
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def write_client_files(folder: Path, *, clients: int, seed: int = 0) -> list[Path]:
    """One CSV per client (client 0 also holds ``ONLY_ON_CLIENT_0`` in 8 rows); their paths."""
    frame = breast_cancer_frame(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, rows in enumerate(np.array_split(np.arange(len(frame)), clients)):
        part = frame.iloc[rows].reset_index(drop=True)
        if index == 0:
            part.loc[:7, "site"] = ONLY_ON_CLIENT_0
        path = folder / f"client-{index}.csv"
        part.to_csv(path, index=False)
        paths.append(path)
    return paths


def client_config(path: Path) -> TableFileConfig:
    return TableFileConfig(path=str(path), target=TARGET, per_client=True)


def training_tables(paths: list[Path], *, seed: int) -> list[Table]:
    """Each client's training rows, as the client itself splits its file."""
    return [own_tables(client_config(path), seed)[0] for path in paths]


def pooled(tables: list[Table]) -> Table:
    """The clients' rows in one table (what a centralized fit would read)."""
    return replace(
        tables[0],
        name="pooled",
        features=pd.concat([t.features for t in tables], ignore_index=True),
        target=pd.concat([t.target for t in tables], ignore_index=True),
    )
