"""``features`` group: a fixed transform applied to every image before training."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register


@dataclass
class FeaturesConfig:
    """A fixed, data-independent transform applied to every image before training.

    Fixed transforms cost no privacy: they learn nothing from the data.
    """

    name: str = MISSING

    def maps_per_channel(self) -> int:
        """How many feature maps each image channel becomes: what a model sized by maps must fit."""
        return 1


@register("features", "none", builder="aureon.features.prepare.unchanged")
@dataclass
class NoFeaturesConfig(FeaturesConfig):
    name: str = "none"


@register("features", "scattering", builder="aureon.features.prepare.scattered")
@dataclass
class ScatteringFeaturesConfig(FeaturesConfig):
    """A 2D scattering transform (kymatio): wavelet moduli, averaged over 2^J pixels."""

    name: str = "scattering"
    J: int = 2
    orientations: int = 8
    cache_dir: str | None = None  # null: $XDG_CACHE_HOME/aureon/features or ~/.cache/...

    def maps_per_channel(self) -> int:
        return scattering_maps(self.J, self.orientations)

    def validate(self) -> None:
        require(1 <= self.J <= 4, "features.J", self.J, "an integer in [1, 4]")
        require(
            1 <= self.orientations <= 16,
            "features.orientations",
            self.orientations,
            "an integer in [1, 16]",
        )


def scattering_maps(J: int, orientations: int) -> int:
    """Maps per image channel a scattering transform gives: 1 + JL + L^2 J(J-1)/2."""
    return 1 + J * orientations + orientations**2 * J * (J - 1) // 2
