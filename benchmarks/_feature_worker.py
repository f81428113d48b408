"""One feature-engineering system on one table, in a process of its own (run by benchmarks/features.py).

    python benchmarks/_feature_worker.py SPEC.json

The spec names the system, the folder holding the split (x_train.npy,
x_test.npy, y_train.npy, columns.json) and the folder for what it makes
(x_train.npy, x_test.npy, result.json: seconds, peak resident memory, the
versions it ran on). Only the fit on the training rows and the transform of
both splits is timed; the peak is the process's resident high-water mark over
that span (Linux resets it through /proc/self/clear_refs), so a system's
imports count only as far as they stay resident.

It imports nothing of AUREON unless the system is AUREON, so it also runs in
the peers' own environment (benchmarks/_peer_env.py).
"""

from __future__ import annotations

import json
import platform
import re
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURETOOLS_PRIMITIVES = ["multiply_numeric", "divide_numeric", "subtract_numeric", "natural_logarithm"]
Made = tuple[np.ndarray, np.ndarray]


def _status_mib(field: str) -> float | None:
    try:
        found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) / 1024 if found else None


def _reset_peak() -> bool:
    """Start the resident high-water mark afresh; False where the OS does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measured(make: Callable[[], Made]) -> tuple[Made, dict[str, Any]]:
    """Run ``make`` once: its seconds, the resident memory before it and the peak during it."""
    baseline = _status_mib("VmRSS")
    span_only = _reset_peak()
    started = time.perf_counter()
    made = make()
    seconds = time.perf_counter() - started
    peak = _status_mib("VmHWM") if span_only else None
    if peak is None:  # no per-span figure here: the whole process's peak (ru_maxrss is KiB on Linux)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return made, {"seconds": seconds, "baseline_rss_mib": baseline, "peak_rss_mib": peak, "peak_span_only": span_only}


def _frame(x: np.ndarray, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(x, columns=columns)


def autofeat_maker(
    x_train: np.ndarray, x_test: np.ndarray, y_train: np.ndarray, spec: dict[str, Any]
) -> Callable[[], Made]:
    """AutoFeatClassifier/Regressor as its README shows: fit_transform the training rows, transform the test rows."""
    from autofeat import AutoFeatClassifier, AutoFeatRegressor

    peer = AutoFeatClassifier if spec["task"] == "classification" else AutoFeatRegressor
    options = {"feateng_steps": spec["feateng_steps"], "verbose": 0, "n_jobs": 1}
    if spec.get("max_gb") is not None:
        options["max_gb"] = spec["max_gb"]
    model = peer(**options)

    def make() -> Made:
        made_train = model.fit_transform(_frame(x_train, spec["columns"]), y_train)
        made_test = model.transform(_frame(x_test, spec["columns"]))
        return np.asarray(made_train, dtype=np.float64), np.asarray(made_test, dtype=np.float64)

    return make


def featuretools_maker(x_train: np.ndarray, x_test: np.ndarray, spec: dict[str, Any]) -> Callable[[], Made]:
    """Deep feature synthesis with numeric transform primitives, then Featuretools' own feature selection.

    The feature definitions and the selection are decided on the training rows
    only; ``calculate_feature_matrix`` then computes the same features for the
    test rows (row-wise primitives: no row sees another).
    """
    import featuretools as ft
    from featuretools.selection import (
        remove_highly_correlated_features,
        remove_highly_null_features,
        remove_low_information_features,
    )

    def entityset(x: np.ndarray) -> Any:
        frame = _frame(x, spec["columns"])
        frame.insert(0, "row", np.arange(len(frame)))
        rows = ft.EntitySet(id="table")
        rows.add_dataframe(dataframe_name="rows", dataframe=frame, index="row")
        return rows

    def make() -> Made:
        matrix, definitions = ft.dfs(
            entityset=entityset(x_train),
            target_dataframe_name="rows",
            trans_primitives=FEATURETOOLS_PRIMITIVES,
            agg_primitives=[],
            max_depth=1,
        )
        matrix, definitions = remove_low_information_features(matrix, definitions)
        matrix, definitions = remove_highly_null_features(matrix, definitions)
        matrix, definitions = remove_highly_correlated_features(matrix, definitions)
        test = ft.calculate_feature_matrix(definitions, entityset=entityset(x_test))
        return matrix.to_numpy(dtype=np.float64), test[matrix.columns].to_numpy(dtype=np.float64)

    return make


def aureon_maker(
    x_train: np.ndarray, x_test: np.ndarray, y_train: np.ndarray, spec: dict[str, Any]
) -> Callable[[], Made]:
    """features=generate fitted over ``spec['client_rows']`` (one list of training rows per client)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from aureon.config.features import GenerateFeaturesConfig
    from aureon.data.tables import Table
    from aureon.features.tabular.federation import LocalFederation
    from aureon.features.tabular.fit import Columns, fit_pipeline

    columns = spec["columns"]

    def table(x: np.ndarray, y: np.ndarray | None) -> Table:
        target = pd.Series(np.zeros(len(x)) if y is None else y, name="target")
        return Table(spec["name"], _frame(x, columns), target, spec["task"], tuple(columns), ())

    train, test = table(x_train, y_train), table(x_test, None)
    clients = [train.take(np.asarray(rows, dtype=np.int64)) for rows in spec["client_rows"]]
    config = GenerateFeaturesConfig(
        clients=len(clients), centralized=len(clients) == 1, max_features=spec["max_features"]
    )

    def make() -> Made:
        pipeline = fit_pipeline(
            config,
            Columns(train.numeric, train.categorical, train.task, target="target"),
            LocalFederation(clients),
            seed=spec["seed"],
        )
        return pipeline.transform(train), pipeline.transform(test)

    return make


def versions(system: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    packages = {"autofeat": ["autofeat"], "featuretools": ["featuretools", "woodwork"], "aureon": ["aureon"]}[system]
    out = {"python": platform.python_version()}
    for package in [*packages, "numpy", "pandas", "scikit-learn"]:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "-"
    return out


def run(spec: dict[str, Any]) -> dict[str, Any]:
    inputs, outputs = Path(spec["inputs"]), Path(spec["outputs"])
    x_train, x_test = np.load(inputs / "x_train.npy"), np.load(inputs / "x_test.npy")
    y_train = np.load(inputs / "y_train.npy")
    spec = {**spec, **json.loads((inputs / "columns.json").read_text())}
    system = spec["system"]
    makers: dict[str, Callable[[], Callable[[], Made]]] = {
        "raw": lambda: lambda: (x_train, x_test),
        "autofeat": lambda: autofeat_maker(x_train, x_test, y_train, spec),
        "featuretools": lambda: featuretools_maker(x_train, x_test, spec),
        "aureon": lambda: aureon_maker(x_train, x_test, y_train, spec),
    }
    if system not in makers:
        raise ValueError(f"spec.system must be one of {sorted(makers)}, got {system!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if system in ("autofeat", "featuretools"):  # imported before the measured span, as AUREON is
            __import__(system)
        (made_train, made_test), figures = measured(makers[system]())
    outputs.mkdir(parents=True, exist_ok=True)
    np.save(outputs / "x_train.npy", np.asarray(made_train, dtype=np.float64))
    np.save(outputs / "x_test.npy", np.asarray(made_test, dtype=np.float64))
    return {**figures, "versions": versions(system) if system != "raw" else {}}


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/_feature_worker.py SPEC.json")
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = run(spec)
    (Path(spec["outputs"]) / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
