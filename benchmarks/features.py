"""Tabular feature engineering: AUREON (centralized and federated) beside autofeat and Featuretools.

On scikit-learn's breast cancer, wine and diabetes tables and mlxtend's Boston
housing table, with one train/test split per table (``dataset.test_fraction``,
seed 0, stratified for classes) shared by every method, and one downstream
model (standardize, then logistic regression for classes, ridge regression for
a numeric target): the features each method makes, the downstream held-out
score (accuracy, or R^2), the seconds it took to make them (fit on the
training rows, transform both splits) and its peak traced memory (tracemalloc:
Python and NumPy allocations in this process).

AUREON rows: features=generate (standardized columns plus up to
``--max-features`` generated ones), fitted centralized on the pooled training
rows and federated over 5 clients (IID: a random equal split; Dirichlet 0.5 over
the classes, or over target quintiles for a numeric target), the clients
answering in this process with the functions a ClientApp runs.
autofeat 2.1 (AutoFeatClassifier/Regressor, ``feateng_steps`` 2, 1 with
``--quick``) and Featuretools 1.31 (deep feature synthesis with the numeric
transform primitives, then its selection of low-information, null and
correlated features) run as their documentation shows.

Scale row: a synthetic table shaped like the reference sheet's credit-card
transactions (``make_classification``: 284,807 rows, 30 numeric columns, 0.17%
positives; synthetic, not the real data): seconds and peak memory of AUREON's
federated fit over 10 clients, and of autofeat and Featuretools unless
``--quick`` (there they are left out: see the closing note of the table).

    python benchmarks/features.py [--quick] [--max-features N] [--skip-scale]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import fmt  # noqa: E402
from benchmarks._report import machine, markdown_table, write  # noqa: E402

NAME = "features"
DATASETS = ("breast_cancer", "wine", "diabetes", "boston_housing")
SEED = 0
CLIENTS = 5
SCALE_CLIENTS = 10
SCALE_ROWS = 284_807
SCALE_COLUMNS = 30
SCALE_POSITIVES = 0.0017
REGRESSION_STRATA = 5  # target quintiles stand in for classes when a Dirichlet split needs labels
FEATURETOOLS_PRIMITIVES = ["multiply_numeric", "divide_numeric", "subtract_numeric", "natural_logarithm"]


@dataclass(frozen=True)
class Made:
    """What one method made: the model's inputs for both splits, and the cost of making them."""

    x_train: np.ndarray
    x_test: np.ndarray
    seconds: float
    peak_bytes: int


def measured(make: Callable[[], tuple[np.ndarray, np.ndarray]]) -> Made:
    """Run ``make`` once, timing it and tracing its peak allocation."""
    tracemalloc.start()
    started = time.perf_counter()
    x_train, x_test = make()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Made(np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64), seconds, peak)


def downstream_score(made: Made, y_train: np.ndarray, y_test: np.ndarray, task: str) -> float:
    """The same model on every method's features: standardize, then logistic or ridge regression."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    finite_train = np.nan_to_num(made.x_train, nan=0.0, posinf=0.0, neginf=0.0)
    finite_test = np.nan_to_num(made.x_test, nan=0.0, posinf=0.0, neginf=0.0)
    head = LogisticRegression(max_iter=5000) if task == "classification" else Ridge(alpha=1.0)
    model = make_pipeline(StandardScaler(), head)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(finite_train, y_train)
        return float(model.score(finite_test, y_test))  # accuracy, or R^2


# ---------------------------------------------------------------- AUREON
def client_split(train: Any, *, clients: int, dirichlet: bool, seed: int) -> list[Any]:
    """The training rows of each client: a random equal split, or Dirichlet(0.5) over classes/target quintiles."""
    from aureon.config.partition import DirichletPartitionConfig
    from aureon.data import partition_indices

    rng = np.random.default_rng(seed)
    if not dirichlet:
        return [train.take(np.sort(rows)) for rows in np.array_split(rng.permutation(len(train)), clients)]
    target = train.target.to_numpy()
    if train.task == "classification":
        labels = np.unique(target.astype(str), return_inverse=True)[1]
    else:
        edges = np.quantile(target, np.linspace(0, 1, REGRESSION_STRATA + 1)[1:-1])
        labels = np.searchsorted(edges, target, side="right")
    partition = DirichletPartitionConfig(alpha=0.5, min_partition_size=10)
    return [train.take(np.sort(rows)) for rows in partition_indices(labels, partition, clients, seed)]


def aureon_features(train: Any, test: Any, *, tables: list[Any], max_features: int) -> Made:
    """features=generate fitted over ``tables`` (one per client; the pooled rows for centralized)."""
    from aureon.config.features import GenerateFeaturesConfig
    from aureon.features.tabular.federation import LocalFederation
    from aureon.features.tabular.fit import Columns, fit_pipeline

    config = GenerateFeaturesConfig(clients=len(tables), centralized=len(tables) == 1, max_features=max_features)
    columns = Columns(train.numeric, train.categorical, train.task, target=str(train.target.name))

    def make() -> tuple[np.ndarray, np.ndarray]:
        pipeline = fit_pipeline(config, columns, LocalFederation(tables), seed=SEED)
        return pipeline.transform(train), pipeline.transform(test)

    return measured(make)


# ---------------------------------------------------------------- peers
def autofeat_features(train: Any, test: Any, *, steps: int) -> Made:
    from autofeat import AutoFeatClassifier, AutoFeatRegressor

    peer = AutoFeatClassifier if train.task == "classification" else AutoFeatRegressor
    x_train = train.features.to_numpy(dtype=np.float64)
    x_test = test.features.to_numpy(dtype=np.float64)

    def make() -> tuple[np.ndarray, np.ndarray]:
        model = peer(feateng_steps=steps, verbose=0, n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made_train = model.fit_transform(pd.DataFrame(x_train, columns=train.numeric), train.target.to_numpy())
            made_test = model.transform(pd.DataFrame(x_test, columns=train.numeric))
        return made_train.to_numpy(), made_test.to_numpy()

    return measured(make)


def featuretools_features(train: Any, test: Any) -> Made:
    import featuretools as ft
    from featuretools.selection import (
        remove_highly_correlated_features,
        remove_highly_null_features,
        remove_low_information_features,
    )

    frame = pd.concat([train.features, test.features], ignore_index=True)
    frame.insert(0, "row", np.arange(len(frame)))
    rows = len(train)

    def make() -> tuple[np.ndarray, np.ndarray]:
        entities = ft.EntitySet(id="table")
        entities.add_dataframe(dataframe_name="rows", dataframe=frame.copy(), index="row")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matrix, _ = ft.dfs(
                entityset=entities,
                target_dataframe_name="rows",
                trans_primitives=FEATURETOOLS_PRIMITIVES,
                agg_primitives=[],
                max_depth=1,
            )
            matrix = remove_highly_correlated_features(
                remove_highly_null_features(remove_low_information_features(matrix))
            )
        values = matrix.to_numpy(dtype=np.float64)  # row-wise primitives: no row sees another, so no leak
        return values[:rows], values[rows:]

    return measured(make)


# ---------------------------------------------------------------- rows
def dataset_rows(name: str, *, quick: bool, max_features: int, peers: dict[str, str | None]) -> list[dict[str, Any]]:
    from aureon.config.registry import REGISTRY
    from aureon.data.tables import class_labels, load_table, split_table

    config = REGISTRY.options("dataset")[name].schema()
    train, test = split_table(load_table(config), test_fraction=config.test_fraction, seed=SEED)
    (y_train, y_test), _ = class_labels(train, test)
    methods: list[tuple[str, Callable[[], Made]]] = [
        ("raw columns", lambda: measured(lambda: (train.features.to_numpy(), test.features.to_numpy()))),
        ("AUREON centralized", lambda: aureon_features(train, test, tables=[train], max_features=max_features)),
        (
            f"AUREON federated, {CLIENTS} clients IID",
            lambda: aureon_features(
                train,
                test,
                tables=client_split(train, clients=CLIENTS, dirichlet=False, seed=SEED),
                max_features=max_features,
            ),
        ),
        (
            f"AUREON federated, {CLIENTS} clients Dirichlet 0.5",
            lambda: aureon_features(
                train,
                test,
                tables=client_split(train, clients=CLIENTS, dirichlet=True, seed=SEED),
                max_features=max_features,
            ),
        ),
    ]
    if peers["autofeat"] is None:
        methods.append(("autofeat", lambda: autofeat_features(train, test, steps=1 if quick else 2)))
    if peers["featuretools"] is None:
        methods.append(("Featuretools", lambda: featuretools_features(train, test)))
    rows = []
    for method, make in methods:
        try:
            made = make()
        except Exception as error:  # a peer that breaks on the installed libraries: its row says how
            failure = f"{type(error).__name__}: {error}"
            rows.append({"dataset": name, "task": train.task, "method": method, "failed": failure})
            print(f"  {name:15s} {method:40s} failed: {failure}")
            continue
        score = downstream_score(made, y_train, y_test, train.task)
        rows.append(
            {
                "dataset": name,
                "task": train.task,
                "metric": "accuracy" if train.task == "classification" else "r2",
                "method": method,
                "features": int(made.x_train.shape[1]),
                "score": score,
                "seconds": made.seconds,
                "peak_mib": made.peak_bytes / 2**20,
            }
        )
        print(f"  {name:15s} {method:40s} {rows[-1]['features']:5d} feats  {score:.4f}  {made.seconds:8.2f} s")
    return rows


def scale_row(*, quick: bool, max_features: int, peers: dict[str, str | None]) -> list[dict[str, Any]]:
    """The synthetic credit-card-shaped table: AUREON federated over 10 clients (and the peers unless quick)."""
    from sklearn.datasets import make_classification

    from aureon.data.tables import split_table, table_from_frame

    x, y = make_classification(
        n_samples=SCALE_ROWS,
        n_features=SCALE_COLUMNS,
        n_informative=10,
        n_redundant=10,
        weights=[1 - SCALE_POSITIVES],
        flip_y=0.0,
        random_state=SEED,
    )
    frame = pd.DataFrame(x, columns=[f"V{i}" for i in range(1, SCALE_COLUMNS + 1)])
    frame["Class"] = y
    table = table_from_frame(frame, name="synthetic_credit_card", target="Class", task="classification")
    train, test = split_table(table, test_fraction=0.2, seed=SEED)
    tables = client_split(train, clients=SCALE_CLIENTS, dirichlet=False, seed=SEED)
    made = aureon_features(train, test, tables=tables, max_features=max_features)
    y_train, y_test = train.target.to_numpy(), test.target.to_numpy()
    rows = [("AUREON federated, 10 clients IID", made)]
    if not quick:
        if peers["featuretools"] is None:
            rows.append(("Featuretools", featuretools_features(train, test)))
        if peers["autofeat"] is None:
            rows.append(("autofeat", autofeat_features(train, test, steps=2)))
    out = []
    for method, result in rows:
        out.append(
            {
                "dataset": "synthetic (make_classification, 284,807 x 30, 0.17% positive)",
                "task": "classification",
                "metric": "accuracy",
                "method": method,
                "features": int(result.x_train.shape[1]),
                "score": downstream_score(result, y_train, y_test, "classification"),
                "seconds": result.seconds,
                "peak_mib": result.peak_bytes / 2**20,
            }
        )
        print(f"  scale {method:40s} {out[-1]['features']:5d} feats  {result.seconds:8.2f} s")
    return out


def peer_status() -> dict[str, str | None]:
    """None where a peer imports; else why its columns are left out."""
    status: dict[str, str | None] = {}
    for module in ("autofeat", "featuretools"):
        try:
            __import__(module)
            status[module] = None
        except ImportError as error:
            status[module] = f"not installed ({error})"
    return status


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("autofeat", "featuretools", "scikit-learn"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "-"
    return out


def report(rows: list[dict[str, Any]], *, quick: bool, peers: dict[str, str | None]) -> str:
    table = markdown_table(
        ["dataset", "method", "features", "held-out score", "seconds", "peak MiB"],
        [
            [
                r["dataset"],
                r["method"],
                r["features"],
                f"{fmt(r['score'])} ({'acc' if r['metric'] == 'accuracy' else 'R^2'})",
                fmt(r["seconds"], ".2f"),
                fmt(r["peak_mib"], ".1f"),
            ]
            for r in rows
            if "failed" not in r
        ],
    )
    failures = sorted({(r["method"], r["failed"]) for r in rows if "failed" in r})
    notes = [
        "Same split (seed 0) and downstream model for every method: StandardScaler + LogisticRegression "
        "(classes) or Ridge(alpha=1) (numeric target); score on the held-out split.",
        "Peak MiB: tracemalloc's peak (Python and NumPy allocations) while the features were made.",
        "The scale row's table is synthetic (make_classification), shaped like the reference sheet's data.",
    ]
    if quick:
        notes.append("--quick: autofeat with feateng_steps=1; the scale row without autofeat and Featuretools.")
    for method, failure in failures:
        notes.append(f"{method} failed on the installed libraries ({failure}); its rows are left out.")
    for peer, why in peers.items():
        if why is not None:
            notes.append(f"{peer} columns left out: {why}.")
    return "# Tabular feature engineering\n\n" + table + "\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="autofeat at 1 step; the scale row AUREON only")
    parser.add_argument("--max-features", type=int, default=20, help="AUREON's budget of generated features")
    parser.add_argument("--skip-scale", action="store_true", help="leave out the synthetic scale row")
    args = parser.parse_args()
    peers = peer_status()
    rows: list[dict[str, Any]] = []
    for name in DATASETS:
        rows += dataset_rows(name, quick=args.quick, max_features=args.max_features, peers=peers)
    if not args.skip_scale:
        rows += scale_row(quick=args.quick, max_features=args.max_features, peers=peers)
    data = {"machine": machine(), "versions": versions(), "quick": args.quick, "peers": peers, "rows": rows}
    json_path, md_path = write(NAME, data, report(rows, quick=args.quick, peers=peers))
    print(report(rows, quick=args.quick, peers=peers))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
