"""``model`` group: a model from the zoo in aureon.models."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register


@dataclass
class ModelConfig:
    """A model from the zoo in aureon.models, built for the dataset's input shape."""

    _target_: str = MISSING

    def check_input_maps(self, maps: int, *, source: str) -> None:
        """Refuse inputs of ``maps`` feature maps per example (made by ``source``) this model cannot take."""

    def scaled(self, factor: float) -> ModelConfig | None:
        """The same model with every width (channels, hidden units) times ``factor``; None: no widths.

        What distillation shrinks a teacher into, so the student keeps its shape.
        """
        return None


@register("model", "cnn")
@dataclass
class CnnConfig(ModelConfig):
    _target_: str = "aureon.models.SmallCNN"
    channels: list[int] = field(default_factory=lambda: [16, 32])
    hidden: int = 32

    def scaled(self, factor: float) -> CnnConfig:
        return replace(self, channels=[_width(c, factor) for c in self.channels], hidden=_width(self.hidden, factor))


@register("model", "mlp")
@dataclass
class MlpConfig(ModelConfig):
    _target_: str = "aureon.models.MLP"
    hidden: list[int] = field(default_factory=lambda: [128])

    def scaled(self, factor: float) -> MlpConfig:
        return replace(self, hidden=[_width(h, factor) for h in self.hidden])


@register("model", "logreg")
@dataclass
class LogRegConfig(ModelConfig):
    _target_: str = "aureon.models.LogisticRegression"


@register("model", "feature_linear")
@dataclass
class FeatureLinearConfig(ModelConfig):
    """A linear classifier on group-normalised feature maps (pair with features=scattering)."""

    _target_: str = "aureon.models.FeatureLinear"
    groups: int = 27

    def check_input_maps(self, maps: int, *, source: str) -> None:
        require(
            self.groups >= 1 and maps % self.groups == 0,
            "model.groups",
            self.groups,
            f"a divisor of the {maps} input maps that {source} gives "
            "(model=feature_linear is meant for features=scattering)",
        )


def _width(width: int, factor: float) -> int:
    return max(1, math.floor(width * factor))
