"""``automl.federated``: tuning a federated run's own hyperparameters, and what tuning costs in privacy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aureon.config.base import require

TUNE_ON = ("private", "public")
TRIAL_LAWS = ("truncated_negative_binomial", "poisson")
PRUNERS = ("median", "hyperband", "none")
SEARCHABLE = ("train.lr", "train.lr_decay", "train.local_epochs", "train.batch_size", "privacy.max_grad_norm")


def _default_space() -> dict[str, list[float]]:
    return {
        "train.lr": [0.05, 4.0],
        "train.lr_decay": [0.5, 1.0],
        "train.local_epochs": [1, 3],
        "train.batch_size": [32, 512],
        "privacy.max_grad_norm": [0.3, 3.0],
    }


@dataclass
class FederatedSearchConfig:
    """Each trial is one federated simulation at the run's privacy target (``privacy.target_epsilon``).

    ``tune_on=private``: trials train on the clients' data; the number of trials is
    random and secret (``trials``: truncated negative binomial with ``eta``/``gamma``,
    or Poisson with ``mu``), trials are independent random draws, never pruned, and
    only the best is released: its epsilon includes the tuning (Papernot and Steinke 2022).
    ``tune_on=public``: trials run on ``public_dataset`` (a dataset option that ships
    in a package, standing in for the private data), adaptively (TPE), ``enqueue``'s
    settings first; a trial whose accuracy lags the others' after
    ``pruner_warmup_rounds`` is stopped (``pruner``); then one private run with the
    best settings, whose epsilon is the only privacy cost.
    ``space``: [low, high] per key of ``SEARCHABLE`` (integers for local_epochs and
    batch_size; lr and batch_size on a log scale); ``strategies``: the strategy options tried.
    """

    tune_on: str = "private"
    trials: str = "truncated_negative_binomial"
    eta: float = 1.0
    gamma: float = 0.25  # E[K] = eta (1 - gamma) / (gamma (1 - gamma^eta)) = 4 for eta 1
    mu: float = 4.0
    n_trials: int = 8  # tune_on=public only: the private count is drawn from ``trials``
    public_dataset: str = "digits"
    space: dict[str, list[float]] = field(default_factory=_default_space)
    strategies: list[str] = field(default_factory=lambda: ["fedavg"])
    enqueue: list[dict[str, Any]] = field(default_factory=list)  # tune_on=public: settings tried first
    pruner: str = "median"  # tune_on=public: median, hyperband or none
    pruner_startup_trials: int = 2  # median: trials that run to the end before any is pruned
    pruner_warmup_rounds: int = 1  # rounds every trial runs before it may be pruned
    seed: int = 0  # the hyperparameter sampler's seed (never the count of trials, which is secret)

    def validate(self) -> None:
        require(self.tune_on in TUNE_ON, "automl.federated.tune_on", self.tune_on, f"one of {list(TUNE_ON)}")
        require(self.trials in TRIAL_LAWS, "automl.federated.trials", self.trials, f"one of {list(TRIAL_LAWS)}")
        require(self.eta > -1, "automl.federated.eta", self.eta, "> -1")
        require(0 < self.gamma < 1, "automl.federated.gamma", self.gamma, "in (0, 1)")
        require(self.mu > 0, "automl.federated.mu", self.mu, "> 0")
        require(self.n_trials >= 1, "automl.federated.n_trials", self.n_trials, "an integer >= 1")
        require(bool(self.strategies), "automl.federated.strategies", self.strategies, "a non-empty list")
        require(self.pruner in PRUNERS, "automl.federated.pruner", self.pruner, f"one of {list(PRUNERS)}")
        require(
            self.pruner_startup_trials >= 1,
            "automl.federated.pruner_startup_trials",
            self.pruner_startup_trials,
            "an integer >= 1",
        )
        require(
            self.pruner_warmup_rounds >= 1,
            "automl.federated.pruner_warmup_rounds",
            self.pruner_warmup_rounds,
            "an integer >= 1",
        )
        for key, bounds in self.space.items():
            require(key in SEARCHABLE, "automl.federated.space", key, f"keys among {list(SEARCHABLE)}")
            require(
                len(bounds) == 2 and 0 < bounds[0] < bounds[1],
                f"automl.federated.space.{key}",
                list(bounds),
                "[low, high] with 0 < low < high (an empty range cannot be searched)",
            )
        require(
            not self.enqueue or self.tune_on == "public",
            "automl.federated.enqueue",
            self.enqueue,
            "empty for tune_on=private (private selection needs independent random trials)",
        )
        for number, settings in enumerate(self.enqueue):
            self._validate_start(number, dict(settings))

    def _validate_start(self, number: int, settings: dict[str, Any]) -> None:
        where = f"automl.federated.enqueue[{number}]"
        for key, value in settings.items():
            if key == "strategy":
                require(value in self.strategies, f"{where}.strategy", value, f"one of {list(self.strategies)}")
                continue
            require(key in self.space, where, key, f"keys of automl.federated.space {list(self.space)} or strategy")
            low, high = self.space[key]
            require(
                isinstance(value, int | float) and low <= value <= high,
                f"{where}.{key}",
                value,
                f"a number in automl.federated.space.{key}=[{low}, {high}]",
            )
