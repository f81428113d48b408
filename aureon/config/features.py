"""``features`` group: a fixed transform applied to every image before training."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from aureon.config.base import require


@dataclass
class FeaturesConfig:
    """A fixed, data-independent transform applied to every image before training.

    Fixed transforms cost no privacy: they learn nothing from the data.
    """

    name: str = MISSING


@dataclass
class NoFeaturesConfig(FeaturesConfig):
    name: str = "none"


@dataclass
class ScatteringFeaturesConfig(FeaturesConfig):
    """A 2D scattering transform (kymatio): wavelet moduli, averaged over 2^J pixels."""

    name: str = "scattering"
    J: int = 2
    orientations: int = 8
    cache_dir: str | None = None  # null: $XDG_CACHE_HOME/aureon/features or ~/.cache/...

    def validate(self) -> None:
        require(1 <= self.J <= 4, "features.J", self.J, "an integer in [1, 4]")
        require(
            1 <= self.orientations <= 16,
            "features.orientations",
            self.orientations,
            "an integer in [1, 16]",
        )
