"""One trial: cross-validate the pipeline a trial suggests, fold by fold, within the time it has.

The running mean score is reported after each fold, so the MedianPruner stops
a trial that lags the others at the same fold. A trial never starts a fold it
could not finish before its own time limit or the search's deadline (estimated
from the folds it has run): it is pruned with that reason instead, which bounds
how far the search runs past its budget to about one fold.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold

from aureon.automl.space import build_pipeline, suggest
from aureon.config.automl import AutoMLConfig
from aureon.exceptions import describe

ERROR_ATTR = "error"  # the reason a trial failed, on the trial (the study goes on)
STOP_ATTR = "stopped"  # why a trial was pruned by the clock rather than by the pruner
PARTIAL_ATTR = "partial_score"  # mean score over the folds a clock-stopped trial finished
FOLDS_ATTR = "folds_done"


def score(task: str, y_true: Any, y_pred: Any) -> float:
    """R^2 for regression, accuracy for classification (higher is better for both)."""
    return float(accuracy_score(y_true, y_pred) if task == "classification" else r2_score(y_true, y_pred))


def folds(task: str, n_folds: int, seed: int) -> KFold | StratifiedKFold:
    """The same folds for every trial: shuffled with the run seed, stratified for classes."""
    if task == "classification":
        return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return KFold(n_splits=n_folds, shuffle=True, random_state=seed)


@dataclass
class TableObjective:
    """Optuna's objective over one training split; ``deadline`` and ``reserve`` are ``time.time()`` seconds."""

    config: AutoMLConfig
    x: pd.DataFrame
    y: pd.Series
    task: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    seed: int
    deadline: float
    trial_timeout: float
    worker: int = 0
    reserve: float = 0.0  # seconds kept after the search (refit of the best, files); raised as trials finish

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", self.worker)
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # a bad combination: recorded as failed, the study goes on
            trial.set_user_attr(ERROR_ATTR, describe(error))
            raise

    def _run(self, trial: optuna.Trial) -> float:
        params = suggest(trial, self.config, task=self.task)
        trial.set_user_attr("family", params["family"])
        pipeline = build_pipeline(
            params, task=self.task, numeric=self.numeric, categorical=self.categorical, seed=self.seed
        )
        started = time.time()
        scores: list[float] = []
        fit_seconds: list[float] = []
        splitter = folds(self.task, self.config.folds, self.seed)
        for step, (train, valid) in enumerate(splitter.split(self.x, self.y)):
            if fit_seconds:
                self._check_time(trial, started, expected=float(np.mean(fit_seconds)), scores=scores)
            fold_started = time.time()
            model = clone(pipeline)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence notes of a bad combination are its score's business
                model.fit(self.x.iloc[train], self.y.iloc[train])
                predicted = model.predict(self.x.iloc[valid])
            fit_seconds.append(time.time() - fold_started)
            value = score(self.task, self.y.iloc[valid], predicted)
            if not np.isfinite(value):
                raise FloatingPointError(f"fold {step} scored {value}")
            scores.append(value)
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                trial.set_user_attr("fit_seconds", float(np.mean(fit_seconds)))
                raise optuna.TrialPruned(f"pruned at fold {step}: mean score {np.mean(scores):.4f} below the median")
        trial.set_user_attr("fit_seconds", float(np.mean(fit_seconds)))
        trial.set_user_attr("cv_std", float(np.std(scores)))
        return float(np.mean(scores))

    def _check_time(self, trial: optuna.Trial, started: float, *, expected: float, scores: list[float]) -> None:
        """Stop the trial if its next fold would pass the budget or the trial timeout.

        The folds it finished are kept on the trial, so a search where no trial
        finished every fold in time can still fall back on the best partial one.
        """
        now = time.time()
        done = len(scores)
        if now + expected > self.deadline - self.reserve:
            reason = f"stopped after {done} folds: the next would end past the time budget"
        elif now - started + expected > self.trial_timeout:
            reason = f"stopped after {done} folds: the next would pass automl.trial_timeout={self.trial_timeout:g} s"
        else:
            return
        trial.set_user_attr(STOP_ATTR, reason)
        trial.set_user_attr(PARTIAL_ATTR, float(np.mean(scores)))
        trial.set_user_attr(FOLDS_ATTR, done)
        raise optuna.TrialPruned(reason)
