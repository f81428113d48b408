"""The centralized search on a table: check the input, run the workers, refit the best, write the run.

Everything that can be wrong with the input (the table, its target, the
storage) is checked before the first trial. The wall-clock budget covers the
whole call: the search stops early enough to leave time for refitting the best
pipeline on the training split and writing the files.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.model_selection import cross_val_score, train_test_split

from aureon.automl.export import save_pipeline
from aureon.automl.leaderboard import LiveLeaderboard, rows, write_csv
from aureon.automl.objective import FOLDS_ATTR, PARTIAL_ATTR, TableObjective, folds, score
from aureon.automl.plots import write_plots
from aureon.automl.space import build_pipeline, default_trials, params_of
from aureon.automl.storage import open_study, redact, storage_url
from aureon.automl.workers import run_workers
from aureon.config.automl import AutoMLConfig
from aureon.config.dataset import TabularDatasetConfig
from aureon.config.run import AureonConfig
from aureon.exceptions import AureonError, ConfigError
from aureon.files import atomic_write_text

FINISH_S = 5.0  # seconds kept for the plots, the files and the summary after the search
REFIT_FACTOR = 1.5  # the refit on the whole training split, against one fold's fit time


@dataclass(frozen=True)
class SearchPlan:
    """What every worker needs: the training split, the study's address and the clock."""

    config: AutoMLConfig
    url: str
    x: pd.DataFrame
    y: pd.Series
    task: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    seed: int
    deadline: float  # time.time() at which the whole command should be done
    trial_timeout: float

    def trials_for(self, worker: int) -> int | None:
        """This worker's share of ``automl.n_trials`` (the shares add up to it exactly)."""
        total, workers = self.config.n_trials, self.config.n_workers
        if total is None:
            return None
        return total // workers + (1 if worker < total % workers else 0)


def metric_name(task: str) -> str:
    return "accuracy" if task == "classification" else "r2"


def load_checked_table(config: AureonConfig) -> Any:
    """The run's table, refused with its key when it cannot be searched (not a table, one class)."""
    dataset = config.dataset
    if not isinstance(dataset, TabularDatasetConfig):
        raise ConfigError(
            f"dataset must be a table for simulations.automl mode=centralized (boston_housing, breast_cancer, "
            f"diabetes, wine, digits_table or table with dataset.path and dataset.target), got {dataset.name!r}"
        )
    from aureon.data.tables import load_table

    table = load_table(dataset)
    if table.task == "classification":
        classes = table.target.nunique(dropna=True)
        if classes < 2:
            raise ConfigError(
                f"dataset.target={dataset.target!r} must hold at least 2 classes for classification, "
                f"got {classes} ({table.target.iloc[0]!r} in every row)"
            )
    minimum = 2 * config.automl.folds
    if len(table) < minimum / (1 - dataset.test_fraction):
        raise ConfigError(
            f"automl.folds must leave at least 2 rows per fold, got {config.automl.folds} folds for "
            f"{len(table)} rows ({dataset.test_fraction:.0%} held out)"
        )
    return table


def search_worker(plan: SearchPlan, *, worker: int, live: bool = False) -> int:
    """Run trials on the shared study until the deadline or this worker's share; the number run."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)  # the workers are the parallelism; BLAS/OpenMP threads only contend
    optuna.logging.set_verbosity(logging.ERROR)  # the leaderboard shows the trials; failures keep their reason
    config = plan.config
    study = open_study(
        plan.url,
        study_name=config.study_name,
        seed=plan.seed + worker,
        pruner_startup_trials=config.pruner_startup_trials,
    )
    objective = TableObjective(
        config=config,
        x=plan.x,
        y=plan.y,
        task=plan.task,
        numeric=plan.numeric,
        categorical=plan.categorical,
        seed=plan.seed,
        deadline=plan.deadline,
        trial_timeout=plan.trial_timeout,
        worker=worker,
        reserve=FINISH_S,
    )
    ran = 0
    board = LiveLeaderboard(
        metric=metric_name(plan.task), top=config.leaderboard_rows, deadline=plan.deadline, enabled=live
    )

    def after_trial(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        nonlocal ran
        ran += 1
        objective.reserve = reserve_after(study)
        now = time.time()
        if now + objective.reserve >= plan.deadline:
            study.stop()
        board.update(study, now)

    timeout = plan.deadline - FINISH_S - time.time()
    share = plan.trials_for(worker)
    if timeout <= 0 or share == 0:
        return 0
    with board, threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=share, timeout=timeout, catch=(Exception,), callbacks=[after_trial])
    return ran


def reserve_after(study: optuna.Study) -> float:
    """Seconds to keep after the search: the files, and the refit of the best trial so far."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        return FINISH_S
    best = max(complete, key=lambda t: float(t.value or -np.inf))
    return FINISH_S + REFIT_FACTOR * float(best.user_attrs.get("fit_seconds", 0.0))


def run_table_search(
    config: AureonConfig, run_dir: Path, *, started: float | None = None, live: bool | None = None
) -> dict[str, Any]:
    """Search, refit the best on the training split, score it held out, write the run; results.json's dict.

    ``started`` (``time.time()``, default now) is when the budget's clock started: a command passes
    the moment it was launched, so its imports count too.
    """
    started = time.time() if started is None else started
    optuna.logging.set_verbosity(logging.ERROR)
    automl = config.automl
    deadline = started + automl.time_budget
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    table = load_checked_table(config)
    preloading = threading.Thread(target=_preload, name="automl-preload", daemon=True)
    preloading.start()  # the imports that finishing needs, while the search runs
    url = storage_url(automl.storage, run_dir)
    study = open_study(
        url, study_name=automl.study_name, seed=config.seed, pruner_startup_trials=automl.pruner_startup_trials
    )
    if not study.get_trials(deepcopy=False):  # a new study starts from the library defaults
        for params in default_trials(automl, task=table.task):
            study.enqueue_trial(params, skip_if_exists=True)
    stratify = table.target if table.task == "classification" else None
    x_train, x_test, y_train, y_test = train_test_split(
        table.features,
        table.target,
        test_size=config.dataset.test_fraction,
        random_state=config.seed,
        stratify=stratify,
    )
    plan = SearchPlan(
        config=automl,
        url=url,
        x=x_train.reset_index(drop=True),
        y=y_train.reset_index(drop=True),
        task=table.task,
        numeric=table.numeric,
        categorical=table.categorical,
        seed=config.seed,
        deadline=deadline,
        trial_timeout=automl.trial_timeout or automl.time_budget / 4,
    )
    show = automl.live if live is None else live
    counts = run_workers(
        _worker_zero if show else search_worker, (plan,), n_workers=automl.n_workers, deadline=deadline
    )
    search_seconds = time.time() - started
    preloading.join()
    study = open_study(url, study_name=automl.study_name, seed=config.seed, pruner_startup_trials=0)
    trials = study.get_trials(deepcopy=False)
    write_csv(trials, run_dir / "leaderboard.csv")
    best, cv_score, fallback = choose_best(trials, automl.folds)
    if best is None:
        raise AureonError(
            f"no trial finished even one fold within automl.time_budget={automl.time_budget:g} s "
            f"({len(trials)} started; reasons in {run_dir / 'leaderboard.csv'}): raise the budget or "
            "narrow automl.families"
        )
    params = params_of(best)
    pipeline = build_pipeline(
        params, task=table.task, numeric=table.numeric, categorical=table.categorical, seed=config.seed
    )
    refit_started = time.time()
    pipeline.fit(plan.x, plan.y)
    refit_seconds = time.time() - refit_started
    holdout = score(table.task, y_test, pipeline.predict(x_test))
    baseline = _baseline(plan, x_test, y_test, n_folds=automl.folds)
    metric = metric_name(table.task)
    files = save_pipeline(
        pipeline,
        run_dir,
        meta={
            "dataset": table.name,
            "task": table.task,
            "metric": metric,
            "columns": {"numeric": list(table.numeric), "categorical": list(table.categorical)},
            "target": table.target.name,
            "family": params["family"],
            "params": params,
        },
    )
    plots = write_plots(study, run_dir)
    states = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    results: dict[str, Any] = {
        "mode": "centralized",
        "dataset": table.name,
        "task": table.task,
        "metric": metric,
        "rows": {"train": len(plan.x), "test": len(x_test)},
        "test_fraction": config.dataset.test_fraction,
        "seed": config.seed,
        "cv_score": cv_score,
        "best_is_partial": fallback,
        "cv_std": best.user_attrs.get("cv_std"),
        "holdout_score": holdout,
        "baseline": baseline,
        "best": {"trial": best.number, "family": params["family"], "params": params},
        "trials": {"total": len(trials), **states, "by_worker": {str(k): v for k, v in sorted(counts.items())}},
        "top": rows(trials)[: automl.leaderboard_rows],
        "seconds": {
            "budget": automl.time_budget,
            "search": search_seconds,
            "refit": refit_seconds,
            "total": time.time() - started,
        },
        "storage": redact(url),
        "study_name": automl.study_name,
        "n_workers": automl.n_workers,
        "plots": plots,
        "files": sorted(p.name for p in files) + ["leaderboard.csv"],
    }
    results["seconds"]["total"] = time.time() - started
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2, default=str))
    print(summary(results, run_dir))
    return results


def choose_best(trials: list[FrozenTrial], n_folds: int) -> tuple[FrozenTrial | None, float, str | None]:
    """The best trial, its cross-validated score, and why it is a partial one (None: it finished).

    Completed trials come first. When the budget let none finish every fold (a
    short budget on a loaded machine), the best trial the clock stopped after at
    least one fold is taken rather than nothing, and results.json says so.
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if complete:
        best = max(complete, key=lambda t: float(t.value))  # type: ignore[arg-type]
        return best, float(best.value), None  # type: ignore[arg-type]
    partial = [t for t in trials if PARTIAL_ATTR in t.user_attrs]
    if not partial:
        return None, float("nan"), None
    best = max(partial, key=lambda t: float(t.user_attrs[PARTIAL_ATTR]))
    reason = (
        f"no trial finished all {n_folds} folds within the budget; trial {best.number} is the best of "
        f"{len(partial)} stopped by the clock, scored on {best.user_attrs[FOLDS_ATTR]} fold(s)"
    )
    return best, float(best.user_attrs[PARTIAL_ATTR]), reason


def _preload() -> None:
    """Import what finishing needs (plots, skops) now, so the time kept for it is only the work."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import skops.io  # noqa: F401
    from optuna.visualization import matplotlib as _  # noqa: F401


def _worker_zero(plan: SearchPlan, *, worker: int) -> int:
    """Worker 0 shows the live leaderboard (it reads every worker's trials from the study)."""
    return search_worker(plan, worker=worker, live=worker == 0)


def _baseline(plan: SearchPlan, x_test: pd.DataFrame, y_test: pd.Series, *, n_folds: int) -> dict[str, float]:
    """The trivial model's scores (mean or majority class), cross-validated and held out."""
    dummy = DummyClassifier(strategy="most_frequent") if plan.task == "classification" else DummyRegressor()
    splitter = folds(plan.task, n_folds, plan.seed)
    cv = cross_val_score(dummy, plan.x, plan.y, cv=splitter, scoring=metric_name(plan.task))
    holdout = score(plan.task, y_test, dummy.fit(plan.x, plan.y).predict(x_test))
    return {"cv_score": float(np.mean(cv)), "holdout_score": holdout}


def summary(results: dict[str, Any], run_dir: Path) -> str:
    """The closing lines on the terminal."""
    best, trials, seconds = results["best"], results["trials"], results["seconds"]
    return (
        f"done: best {best['family']} (trial {best['trial']}): CV {results['metric']} {results['cv_score']:.4f}, "
        f"held-out {results['holdout_score']:.4f} (baseline {results['baseline']['holdout_score']:.4f}); "
        f"{trials['total']} trials ({trials['complete']} completed, {trials['pruned']} pruned, "
        f"{trials['fail']} failed) in {seconds['total']:.1f} s of {seconds['budget']:g}\n"
        + (f"note: {results['best_is_partial']}\n" if results.get("best_is_partial") else "")
        + f"results: {run_dir / 'results.json'}"
    )
