"""``python -m simulations.automl [overrides]``: model and hyperparameter search with Optuna.

Examples::

    python -m simulations.automl dataset=boston_housing automl.time_budget=60
    python -m simulations.automl dataset=wine automl.families=[random_forest,svm] automl.n_workers=2
    python -m simulations.automl dataset=diabetes automl.storage=postgresql://me@db:5432/studies
    python -m simulations.automl automl.mode=federated +experiment=mnist_dp dataset.path=/data/mnist
    python -m simulations.automl automl.mode=federated +experiment=mnist_dp automl.federated.tune_on=public

``automl.mode=centralized`` (the default) searches model families and their
hyperparameters on a table and writes the best pipeline, leaderboard.csv,
plots and results.json to the run directory; ``automl.mode=federated`` tunes the
federated run's own hyperparameters (aureon.automl.federated). A bad value
ends the command with one ``error: ...`` line and exit code 2 before any trial.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from aureon.cli import exit_on_error, run_hydra
from aureon.config import register_configs, to_typed

register_configs()


def run(cfg: DictConfig) -> float:
    """Validate, search, and return the best cross-validated score (Hydra's sweep objective)."""
    started = time.time()  # the budget counts the heavy imports and the table's loading too
    config = to_typed(cfg)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    results: dict[str, Any]
    if config.automl.mode == "federated":
        from aureon.automl.federated import run_federated_search

        results = run_federated_search(config, run_dir, search=config.automl.federated)
        best = results.get("best") or {}
        return float(best.get("test_accuracy", float("nan")))
    from aureon.automl.search import run_table_search

    results = run_table_search(config, run_dir, started=started)
    return float(results["cv_score"])


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """The Hydra task: ``run`` with AUREON's one-line errors and exit code 2."""
    return exit_on_error(lambda: run(cfg))


if __name__ == "__main__":
    run_hydra(main)
