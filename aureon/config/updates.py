"""``validation``, ``norm_bound``, ``aggregation`` and ``faults``: what a client update may be and weigh."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aureon.config.base import require


@dataclass
class ValidationConfig:
    """Checks on every client reply before the strategy aggregates it (aureon.strategies)."""

    enabled: bool = True
    max_update_norm: float | None = None  # reject updates whose L2 norm exceeds this

    def validate(self) -> None:
        bound = self.max_update_norm
        require(
            bound is None or (math.isfinite(bound) and bound > 0),
            "validation.max_update_norm",
            bound,
            "null or a finite number > 0",
        )
        require(
            self.enabled or bound is None,
            "validation.max_update_norm",
            bound,
            "null when validation.enabled is false (the bound would be ignored)",
        )


@dataclass
class NormBoundConfig:
    """Norm bounding: scale each client's update down to at most ``max_norm`` (L2)."""

    max_norm: float | None = None

    def validate(self) -> None:
        require(
            self.max_norm is None or (math.isfinite(self.max_norm) and self.max_norm > 0),
            "norm_bound.max_norm",
            self.max_norm,
            "null or a finite number > 0",
        )


@dataclass
class AggregationConfig:
    """Bounds on what one client can weigh in any aggregate (plain and secure).

    A reply declaring more than ``max_weight`` examples counts as ``max_weight``:
    without a cap, one client declaring 10^9 examples would set the mean alone.
    """

    max_weight: float = 10000.0

    def validate(self) -> None:
        require(
            math.isfinite(self.max_weight) and self.max_weight > 0,
            "aggregation.max_weight",
            self.max_weight,
            "a finite number > 0",
        )


FAULT_MODES = ("sign_flip", "scale")


@dataclass
class FaultsConfig:
    """Fault injection for robustness experiments: these partitions send corrupted updates.

    ``sign_flip`` sends global - scale * update; ``scale`` sends global + scale * update.
    """

    byzantine_partitions: list[int] = field(default_factory=list)
    mode: str = "sign_flip"
    scale: float = 1.0

    def validate(self) -> None:
        require(
            self.mode in FAULT_MODES,
            "faults.mode",
            self.mode,
            f"one of {', '.join(map(repr, FAULT_MODES))}",
        )
        require(math.isfinite(self.scale), "faults.scale", self.scale, "a finite number")
