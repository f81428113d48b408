"""``automl`` group: the model and hyperparameter search of ``python -m simulations.automl``.

The search space is data, not code: ``automl.families`` picks the model
families and ``automl.space.<family>.<parameter>=[low, high]`` narrows a
numeric range, so a bad space is refused here, before any trial runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aureon.config.automl_federated import FederatedSearchConfig
from aureon.config.base import require
from aureon.config.registry import register
from aureon.exceptions import ConfigError

AUTOML_MODES = ("centralized", "federated")

# family -> parameter -> [low, high]; integer parameters are the ones whose bounds are ints here.
DEFAULT_SPACE: dict[str, dict[str, list[float]]] = {
    "linear": {"alpha": [1e-4, 1e2], "l1_ratio": [0.0, 1.0]},
    "random_forest": {"n_estimators": [50, 400], "max_depth": [3, 30], "min_samples_leaf": [1, 10]},
    "extra_trees": {"n_estimators": [50, 400], "max_depth": [3, 30], "min_samples_leaf": [1, 10]},
    "hist_gradient_boosting": {
        "learning_rate": [0.01, 0.3],
        "max_iter": [50, 600],
        "max_leaf_nodes": [8, 64],
        "min_samples_leaf": [2, 40],
        "l2_regularization": [1e-8, 10.0],
    },
    "svm": {"C": [1e-2, 1e3], "gamma": [1e-4, 1.0], "epsilon": [1e-3, 1.0]},
    "knn": {"n_neighbors": [1, 30]},
    "mlp": {"width": [16, 256], "depth": [1, 3], "lr": [1e-3, 0.5], "epochs": [20, 200], "batch_size": [16, 128]},
}
LOG_SCALE = {
    ("linear", "alpha"),
    ("hist_gradient_boosting", "learning_rate"),
    ("hist_gradient_boosting", "l2_regularization"),
    ("svm", "C"),
    ("svm", "gamma"),
    ("svm", "epsilon"),
    ("mlp", "lr"),
    ("mlp", "width"),
}
# Parameters searched over integers (the others over floats).
INTEGER_PARAMS = frozenset(
    {
        ("random_forest", "n_estimators"),
        ("random_forest", "max_depth"),
        ("random_forest", "min_samples_leaf"),
        ("extra_trees", "n_estimators"),
        ("extra_trees", "max_depth"),
        ("extra_trees", "min_samples_leaf"),
        ("hist_gradient_boosting", "max_iter"),
        ("hist_gradient_boosting", "max_leaf_nodes"),
        ("hist_gradient_boosting", "min_samples_leaf"),
        ("knn", "n_neighbors"),
        ("mlp", "width"),
        ("mlp", "depth"),
        ("mlp", "epochs"),
        ("mlp", "batch_size"),
    }
)
MODEL_FAMILIES = tuple(DEFAULT_SPACE)


def _default_space() -> dict[str, dict[str, list[float]]]:
    return {family: {name: list(bounds) for name, bounds in params.items()} for family, params in DEFAULT_SPACE.items()}


@register("automl", "default")
@dataclass
class AutoMLConfig:
    """One search: which families, which ranges, how long, where the study lives."""

    name: str = "default"
    mode: str = "centralized"  # centralized: model families on a table; federated: the federated run's own settings
    time_budget: float = 60.0  # seconds of wall clock for the whole command, refit and files included
    n_trials: int | None = None  # total over all workers; None: as many as the budget allows
    trial_timeout: float | None = None  # seconds one trial may start folds for; None: a quarter of the budget
    folds: int = 5
    families: list[str] = field(default_factory=lambda: list(MODEL_FAMILIES))
    space: dict[str, dict[str, list[float]]] = field(default_factory=_default_space)
    storage: str | None = None  # None: Optuna's journal file in the run directory; or postgresql://...
    study_name: str = "aureon-automl"
    n_workers: int = 1  # processes on this machine, all on the same study
    pruner_startup_trials: int = 5  # MedianPruner prunes only after this many trials have finished
    live: bool = True  # the live leaderboard in the terminal
    leaderboard_rows: int = 10
    federated: FederatedSearchConfig = field(default_factory=FederatedSearchConfig)  # mode=federated's search

    def validate(self) -> None:
        require(self.mode in AUTOML_MODES, "automl.mode", self.mode, f"one of {', '.join(AUTOML_MODES)}")
        require(self.time_budget > 0, "automl.time_budget", self.time_budget, "> 0 seconds")
        require(
            self.n_trials is None or self.n_trials >= 1, "automl.n_trials", self.n_trials, "null or an integer >= 1"
        )
        require(
            self.trial_timeout is None or self.trial_timeout > 0,
            "automl.trial_timeout",
            self.trial_timeout,
            "null or > 0 seconds",
        )
        require(self.folds >= 2, "automl.folds", self.folds, "an integer >= 2")
        require(self.n_workers >= 1, "automl.n_workers", self.n_workers, "an integer >= 1")
        require(self.pruner_startup_trials >= 0, "automl.pruner_startup_trials", self.pruner_startup_trials, ">= 0")
        require(self.leaderboard_rows >= 1, "automl.leaderboard_rows", self.leaderboard_rows, ">= 1")
        require(bool(self.study_name), "automl.study_name", self.study_name, "a non-empty name")
        require(
            self.storage is None or "://" in self.storage,
            "automl.storage",
            self.storage,
            "null (a journal file in the run directory) or a database URL such as postgresql://user@host:5432/db",
        )
        self._validate_space()
        self.federated.validate()

    def _validate_space(self) -> None:
        known = ", ".join(MODEL_FAMILIES)
        require(bool(self.families), "automl.families", self.families, f"a non-empty list of {known}")
        for family in self.families:
            require(family in DEFAULT_SPACE, "automl.families", family, f"a model family among {known}")
        for family, params in self.space.items():
            require(family in DEFAULT_SPACE, f"automl.space.{family}", family, f"a model family among {known}")
            for name, bounds in params.items():
                key = f"automl.space.{family}.{name}"
                if name not in DEFAULT_SPACE[family]:
                    raise ConfigError(
                        f"{key} is not a parameter of {family}; expected one of {', '.join(DEFAULT_SPACE[family])}"
                    )
                require(len(bounds) == 2, key, list(bounds), "a range [low, high]")
                low, high = float(bounds[0]), float(bounds[1])
                require(low < high, key, list(bounds), "a non-empty range [low, high] with low < high")
                if (family, name) in INTEGER_PARAMS:
                    require(
                        low.is_integer() and high.is_integer() and low >= 1,
                        key,
                        list(bounds),
                        "a range of integers >= 1",
                    )
                if (family, name) in LOG_SCALE:
                    require(low > 0, key, list(bounds), "a range with low > 0 (searched on a log scale)")
                elif low < 0:
                    require(False, key, list(bounds), "a range with low >= 0")

    def bounds(self, family: str, name: str) -> tuple[float, float]:
        """The searched range of one parameter: the config's, or the default one."""
        low, high = self.space.get(family, {}).get(name, DEFAULT_SPACE[family][name])
        return float(low), float(high)
