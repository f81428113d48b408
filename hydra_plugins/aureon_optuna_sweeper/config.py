"""The sweeper's config (``hydra/sweeper=optuna``) and its sampler options, in Hydra's ConfigStore."""

# No ``from __future__ import annotations``: Hydra executes this module outside sys.modules
# while scanning for plugins, and dataclasses then cannot resolve string annotations.

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

DIRECTIONS = ("maximize", "minimize")


@dataclass
class TpeSamplerConf:
    """Optuna's TPE, seeded so that a sweep is repeatable."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = 0
    n_startup_trials: int = 10
    multivariate: bool = False


@dataclass
class RandomSamplerConf:
    """Independent random search (what private hyperparameter selection needs)."""

    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = 0


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper.*``: as the official hydra-optuna-sweeper, over Optuna 5.

    ``direction`` defaults to maximize: AUREON's jobs return a test accuracy.
    ``storage``: null keeps the study in memory; an ``sqlite://``/``postgresql://``
    URL is an RDB study; any other string is the path of a journal file (several
    processes on one machine may share it).
    ``params``: the search space in YAML, ``key: 'interval(0.1, 4.0)'``; command-line
    overrides of the same key take precedence.
    """

    _target_: str = "hydra_plugins.aureon_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # _self_ first: the chosen hydra/sweeper/sampler option fills ``sampler``.
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}])
    sampler: Any = None
    direction: str = "maximize"
    study_name: str | None = None
    storage: str | None = None
    n_trials: int = 20
    n_jobs: int = 1
    params: dict[str, str] | None = None


store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="aureon_optuna_sweeper")
store.store(group="hydra/sweeper/sampler", name="tpe", node=TpeSamplerConf, provider="aureon_optuna_sweeper")
store.store(group="hydra/sweeper/sampler", name="random", node=RandomSamplerConf, provider="aureon_optuna_sweeper")
