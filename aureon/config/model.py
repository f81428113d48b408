"""``model`` group: a model from the zoo in aureon.models."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING


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


@dataclass
class FeatureLinearConfig(ModelConfig):
    """A linear classifier on group-normalised feature maps (pair with features=scattering)."""

    _target_: str = "aureon.models.FeatureLinear"
    groups: int = 27
