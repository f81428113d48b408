"""The Hydra Sweeper plugin class; the work is in ``_impl`` (imported when a sweep starts)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

import hydra_plugins.aureon_optuna_sweeper.config  # noqa: F401  (stores hydra/sweeper=optuna)


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=optuna``: each trial is one job, its return value the objective."""

    def __init__(
        self,
        *,
        sampler: Any,
        direction: str,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        params: dict[str, str] | None,
    ) -> None:
        from hydra_plugins.aureon_optuna_sweeper._impl import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(
            sampler=sampler,
            direction=direction,
            study_name=study_name,
            storage=storage,
            n_trials=n_trials,
            n_jobs=n_jobs,
            params=params,
        )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.sweeper.sweep(arguments)
