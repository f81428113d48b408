"""Structured configs: one dataclass per component, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` hold the values users edit; the dataclasses here
are their schemas. Hydra checks key names and types while composing (a typo or a
string where a float belongs fails with the key's name); ``validate`` checks the
ranges once the config is composed, before anything is trained.

One module per group (``dataset``, ``model``, ``strategy``, ...), ``rules`` for
the checks that span groups, ``store`` for Hydra's ConfigStore; every name is
re-exported here, so ``from aureon.config import X`` is the way to import them.
"""

from __future__ import annotations

from aureon.config.audit import AuditConfig
from aureon.config.base import require
from aureon.config.compression import (
    DOWNLOAD_CODECS,
    UPLOAD_CODECS,
    CompressionConfig,
    Fp16CompressionConfig,
    Int8CompressionConfig,
    NoCompressionConfig,
    TopKCompressionConfig,
)
from aureon.config.dataset import DatasetConfig, DigitsConfig, MnistConfig, MnistSubsetConfig
from aureon.config.deployment import DeploymentConfig
from aureon.config.features import FeaturesConfig, NoFeaturesConfig, ScatteringFeaturesConfig, scattering_maps
from aureon.config.model import CnnConfig, FeatureLinearConfig, LogRegConfig, MlpConfig, ModelConfig
from aureon.config.model_compression_job import (
    MODEL_COMPRESSION_METHODS,
    QUANTIZATION_SCHEMES,
    ModelCompressionJob,
)
from aureon.config.partition import DirichletPartitionConfig, IidPartitionConfig, PartitionConfig
from aureon.config.privacy import ClientLevelConfig, DpSgdConfig, NoPrivacyConfig, PrivacyConfig
from aureon.config.rules import check_aggregation, check_model_inputs, sampled_clients
from aureon.config.run import MAX_NUM_ROUNDS, AureonConfig
from aureon.config.secure_aggregation import (
    NoSecureAggregationConfig,
    SecAggPlusConfig,
    SecureAggregationConfig,
)
from aureon.config.simulation import SimulationConfig
from aureon.config.store import GROUPS, register_configs, to_typed, to_yaml
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
    StrategyConfig,
)
from aureon.config.training import TrainConfig
from aureon.config.updates import (
    FAULT_MODES,
    AggregationConfig,
    FaultsConfig,
    NormBoundConfig,
    ValidationConfig,
)

__all__ = [
    "AggregationConfig",
    "AuditConfig",
    "AureonConfig",
    "BulyanConfig",
    "CentralizedConfig",
    "CnnConfig",
    "CompressionConfig",
    "DOWNLOAD_CODECS",
    "DatasetConfig",
    "DeploymentConfig",
    "DigitsConfig",
    "DirichletPartitionConfig",
    "ClientLevelConfig",
    "DpSgdConfig",
    "FAULT_MODES",
    "FaultsConfig",
    "FeatureLinearConfig",
    "FeaturesConfig",
    "FedAdamConfig",
    "FedAvgConfig",
    "FedMedianConfig",
    "FedProxConfig",
    "FedTrimmedAvgConfig",
    "Fp16CompressionConfig",
    "GROUPS",
    "IidPartitionConfig",
    "Int8CompressionConfig",
    "KrumConfig",
    "LogRegConfig",
    "MAX_NUM_ROUNDS",
    "MODEL_COMPRESSION_METHODS",
    "MlpConfig",
    "MnistConfig",
    "MnistSubsetConfig",
    "ModelCompressionJob",
    "ModelConfig",
    "MultiKrumConfig",
    "NoCompressionConfig",
    "NoFeaturesConfig",
    "NoPrivacyConfig",
    "NoSecureAggregationConfig",
    "NormBoundConfig",
    "PartitionConfig",
    "PrivacyConfig",
    "QUANTIZATION_SCHEMES",
    "ScatteringFeaturesConfig",
    "SecAggPlusConfig",
    "SecureAggregationConfig",
    "SimulationConfig",
    "StrategyConfig",
    "TopKCompressionConfig",
    "TrainConfig",
    "UPLOAD_CODECS",
    "ValidationConfig",
    "check_aggregation",
    "check_model_inputs",
    "register_configs",
    "require",
    "sampled_clients",
    "scattering_maps",
    "to_typed",
    "to_yaml",
]
