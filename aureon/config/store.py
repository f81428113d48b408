"""Hydra's side: every schema in the ConfigStore, a composed DictConfig to typed objects, and back."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from aureon.config.compression import (
    Fp16CompressionConfig,
    Int8CompressionConfig,
    NoCompressionConfig,
    TopKCompressionConfig,
)
from aureon.config.dataset import DigitsConfig, MnistConfig, MnistSubsetConfig
from aureon.config.features import NoFeaturesConfig, ScatteringFeaturesConfig
from aureon.config.model import CnnConfig, FeatureLinearConfig, LogRegConfig, MlpConfig
from aureon.config.partition import DirichletPartitionConfig, IidPartitionConfig
from aureon.config.privacy import DpSgdConfig, NoPrivacyConfig
from aureon.config.run import AureonConfig
from aureon.config.secure_aggregation import NoSecureAggregationConfig, SecAggPlusConfig
from aureon.config.strategy import (
    BulyanConfig,
    CentralizedConfig,
    FedAdamConfig,
    FedAvgConfig,
    FedMedianConfig,
    FedProxConfig,
    FedTrimmedAvgConfig,
    KrumConfig,
    MultiKrumConfig,
)
from aureon.exceptions import ConfigError

GROUPS: dict[str, dict[str, type]] = {
    "dataset": {
        "digits": DigitsConfig,
        "mnist_subset": MnistSubsetConfig,
        "mnist": MnistConfig,
    },
    "model": {
        "cnn": CnnConfig,
        "mlp": MlpConfig,
        "logreg": LogRegConfig,
        "feature_linear": FeatureLinearConfig,
    },
    "features": {"none": NoFeaturesConfig, "scattering": ScatteringFeaturesConfig},
    "partition": {"iid": IidPartitionConfig, "dirichlet": DirichletPartitionConfig},
    "strategy": {
        "fedavg": FedAvgConfig,
        "fedprox": FedProxConfig,
        "fedadam": FedAdamConfig,
        "centralized": CentralizedConfig,
        "krum": KrumConfig,
        "multikrum": MultiKrumConfig,
        "bulyan": BulyanConfig,
        "fedmedian": FedMedianConfig,
        "fedtrimmedavg": FedTrimmedAvgConfig,
    },
    "secure_aggregation": {
        "none": NoSecureAggregationConfig,
        "secagg_plus": SecAggPlusConfig,
    },
    "privacy": {"none": NoPrivacyConfig, "dp_sgd": DpSgdConfig},
    "compression": {
        "none": NoCompressionConfig,
        "fp16": Fp16CompressionConfig,
        "int8": Int8CompressionConfig,
        "topk": TopKCompressionConfig,
    },
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
