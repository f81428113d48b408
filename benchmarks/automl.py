"""Table AutoML: AUREON's search against FLAML, with Optuna's bare TPE on one random forest as a floor.

Each dataset is split once per seed, 80/20 (stratified for classes), and every
system searches the same 80% for the same wall-clock budget with the same seed,
then is scored on the same 20%: R^2 for regression, accuracy for
classification. AUREON runs ``run_table_search`` (one worker, single-threaded
BLAS, the budget covering refit and files); FLAML runs ``flaml.AutoML`` with
``n_jobs=1``; the floor is Optuna's TPE over a RandomForest's hyperparameters,
5-fold CV, refit on the 80%. Figures: held-out score (mean and spread over
seeds), trials, seconds, and AUREON's margin over FLAML.

    python benchmarks/automl.py            # 5 seeds, 60 s per search
    python benchmarks/automl.py --quick    # 1 seed, 20 s per search

The runs are single-threaded, so two halves can run side by side on two cores
and be combined into one table:

    python benchmarks/automl.py --datasets boston_housing diabetes --name automl_a
    python benchmarks/automl.py --datasets breast_cancer wine digits_table --name automl_b
    python benchmarks/automl.py --merge automl_a automl_b      # writes results/automl.*
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import fmt  # noqa: E402
from benchmarks._report import RESULTS, machine, markdown_table, write  # noqa: E402

NAME = "automl"
DATASETS = ("boston_housing", "diabetes", "breast_cancer", "wine", "digits_table")
SYSTEMS = ("aureon", "flaml", "optuna_rf")
TEST_FRACTION = 0.2
TARGET_BOSTON_R2 = 0.89


def split(name: str, seed: int) -> tuple[Any, Any, Any, Any, str]:
    """The dataset's 80/20 split, exactly as ``run_table_search`` draws it for this seed."""
    from sklearn.model_selection import train_test_split

    from aureon.data.tables import load_table
    from aureon.launch.run_config import compose_config

    table = load_table(compose_config([f"dataset={name}"]).dataset)
    stratify = table.target if table.task == "classification" else None
    x_train, x_test, y_train, y_test = train_test_split(
        table.features, table.target, test_size=TEST_FRACTION, random_state=seed, stratify=stratify
    )
    return x_train, x_test, y_train, y_test, table.task


def run_aureon(name: str, seed: int, budget: float) -> dict[str, Any]:
    from aureon.automl.search import run_table_search
    from aureon.launch.run_config import compose_config

    config = compose_config(
        [
            f"dataset={name}",
            f"dataset.test_fraction={TEST_FRACTION}",
            f"seed={seed}",
            f"automl.time_budget={budget}",
            "automl.live=false",
        ]
    )
    with tempfile.TemporaryDirectory(prefix="aureon-automl-bench-") as run_dir:
        started = time.time()
        results = run_table_search(config, Path(run_dir), started=started, live=False)
        seconds = time.time() - started
    return {
        "score": results["holdout_score"],
        "trials": results["trials"]["total"],
        "completed": results["trials"]["complete"],
        "seconds": seconds,
        "best": results["best"]["family"],
    }


def run_flaml(name: str, seed: int, budget: float) -> dict[str, Any]:
    from flaml import AutoML

    from aureon.automl.objective import score

    x_train, x_test, y_train, y_test, task = split(name, seed)
    automl = AutoML()
    started = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(
            x_train,
            y_train,
            task=task,
            metric="accuracy" if task == "classification" else "r2",
            time_budget=budget,
            seed=seed,
            n_jobs=1,
            verbose=0,
        )
        predicted = automl.predict(x_test)
    seconds = time.time() - started
    return {
        "score": score(task, y_test, predicted),
        "trials": len(automl.config_history),
        "completed": len(automl.config_history),
        "seconds": seconds,
        "best": automl.best_estimator,
    }


def run_optuna_rf(name: str, seed: int, budget: float) -> dict[str, Any]:
    """The floor: TPE over one random forest's hyperparameters, 5-fold CV, no preprocessing search."""
    import optuna
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.model_selection import cross_val_score

    from aureon.automl.objective import folds, score

    x_train, x_test, y_train, y_test, task = split(name, seed)
    forest = RandomForestClassifier if task == "classification" else RandomForestRegressor
    metric = "accuracy" if task == "classification" else "r2"

    def build(params: dict[str, Any]) -> Any:
        return forest(**params, random_state=seed, n_jobs=1)

    def objective(trial: optuna.Trial) -> float:
        params = {
            "n_estimators": trial.suggest_int("n_estimators", 50, 400),
            "max_depth": trial.suggest_int("max_depth", 3, 30),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10),
            "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        }
        cv = cross_val_score(build(params), x_train, y_train, cv=folds(task, 5, seed), scoring=metric)
        return float(np.mean(cv))

    optuna.logging.set_verbosity(logging.ERROR)
    started = time.time()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, timeout=budget * 0.85)  # leave the refit inside the budget
    model = build(study.best_params).fit(x_train, y_train)
    seconds = time.time() - started
    return {
        "score": score(task, y_test, model.predict(x_test)),
        "trials": len(study.trials),
        "completed": len(study.trials),
        "seconds": seconds,
        "best": "random_forest",
    }


RUNNERS = {"aureon": run_aureon, "flaml": run_flaml, "optuna_rf": run_optuna_rf}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [r for r in runs if r["score"] is None]
    runs = [r for r in runs if r["score"] is not None]
    if not runs:
        return {"score_mean": None, "failed": len(failed), "errors": [r["error"] for r in failed], "best": []}
    scores = [r["score"] for r in runs]
    return {
        "failed": len(failed),
        "score_mean": float(np.mean(scores)),
        "score_std": float(np.std(scores)),
        "score_min": float(np.min(scores)),
        "score_max": float(np.max(scores)),
        "trials_mean": float(np.mean([r["trials"] for r in runs])),
        "seconds_mean": float(np.mean([r["seconds"] for r in runs])),
        "best": sorted({str(r["best"]) for r in runs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, 20 s per search")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5, quick 1)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per search (default 60, quick 20)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--name", default=NAME, help="results file stem under benchmarks/results/")
    parser.add_argument("--merge", nargs="+", metavar="STEM", help="combine earlier results files into --name")
    args = parser.parse_args()
    if args.merge:
        data = merge([json.loads((RESULTS / f"{stem}.json").read_text()) for stem in args.merge])
        write(args.name, data, report(data, data["systems"]))
        return
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 5)))
    budget = args.budget if args.budget is not None else (20.0 if args.quick else 60.0)

    per_run: list[dict[str, Any]] = []
    for name in args.datasets:
        for seed in seeds:
            for system in args.systems:
                try:
                    figures = RUNNERS[system](name, seed, budget)
                except Exception as error:  # a search with no result is a figure too, not the end of the table
                    figures = {"score": None, "trials": 0, "completed": 0, "seconds": None, "best": None}
                    figures["error"] = f"{type(error).__name__}: {error}"
                per_run.append({"dataset": name, "seed": seed, "system": system, **figures})
                print(f"{name} seed {seed} {system}: {figures}", flush=True)
    summary: dict[str, dict[str, Any]] = {}
    for name in args.datasets:
        summary[name] = {}
        for system in args.systems:
            runs = [r for r in per_run if r["dataset"] == name and r["system"] == system]
            summary[name][system] = summarise(runs)
    data = {
        "budget_s": budget,
        "seeds": seeds,
        "test_fraction": TEST_FRACTION,
        "quick": args.quick,
        "systems": args.systems,
        "machine": machine(),
        "summary": summary,
        "runs": per_run,
    }
    write(args.name, data, report(data, args.systems))


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One table from runs over disjoint datasets, refused unless budget, seeds and systems agree."""
    first = parts[0]
    for part in parts[1:]:
        for key in ("budget_s", "seeds", "test_fraction", "quick", "systems"):
            if part[key] != first[key]:
                raise SystemExit(f"error: cannot merge runs whose {key} differ: {first[key]!r} vs {part[key]!r}")
        overlap = set(part["summary"]) & {name for p in parts if p is not part for name in p["summary"]}
        if overlap:
            raise SystemExit(f"error: cannot merge runs that share datasets: {sorted(overlap)}")
    summary = {name: by for name in DATASETS for part in parts for n, by in part["summary"].items() if n == name}
    return {**first, "summary": summary, "runs": [run for part in parts for run in part["runs"]]}


def report(data: dict[str, Any], systems: list[str]) -> str:
    budget, seeds = data["budget_s"], data["seeds"]
    lines = [
        "# Table AutoML: AUREON vs FLAML, with Optuna TPE on one random forest as a floor\n",
        f"Budget {budget:g} s per search, seeds {seeds}, the same 80/20 split per seed for every system "
        "(stratified for classes); held-out R^2 (regression) or accuracy (classification); mean ± standard "
        "deviation over seeds. One worker each (FLAML `n_jobs=1`). "
        "`python benchmarks/automl.py" + (" --quick" if data["quick"] else "") + "`.\n",
    ]
    header = ["dataset", "metric"]
    for system in systems:
        header += [f"{system} score", f"{system} trials", f"{system} s"]
    if {"aureon", "flaml"} <= set(systems):
        header.append("AUREON - FLAML")
    rows = []
    for name, by_system in data["summary"].items():
        metric = "R^2" if name in ("boston_housing", "diabetes") else "accuracy"
        row: list[Any] = [name, metric]
        for system in systems:
            s = by_system[system]
            if s["score_mean"] is None:
                row += [f"no result ({s['failed']} failed)", "-", "-"]
                continue
            row += [
                f"{s['score_mean']:.4f} ± {s['score_std']:.4f}",
                f"{s['trials_mean']:.0f}",
                fmt(s["seconds_mean"], ".1f"),
            ]
        if {"aureon", "flaml"} <= set(systems):
            ours, theirs = by_system["aureon"]["score_mean"], by_system["flaml"]["score_mean"]
            row.append("-" if ours is None or theirs is None else f"{ours - theirs:+.4f}")
        rows.append(row)
    lines.append(markdown_table(header, rows))
    if "boston_housing" in data["summary"] and "aureon" in systems:
        boston = data["summary"]["boston_housing"]["aureon"]["score_mean"]
        if boston is None:
            verdict = "no completed trial within the budget"
        else:
            verdict = f"{boston:.4f}, " + (
                "met" if boston >= TARGET_BOSTON_R2 else f"missed by {TARGET_BOSTON_R2 - boston:.4f}"
            )
        lines.append(f"\nTarget: Boston housing R^2 >= {TARGET_BOSTON_R2} (at 60 s): {verdict}.\n")
    best = {name: {s: v["best"] for s, v in by.items()} for name, by in data["summary"].items()}
    lines.append("\nBest model families: " + "; ".join(f"{n}: {b}" for n, b in best.items()) + "\n")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
