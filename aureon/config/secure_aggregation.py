"""``secure_aggregation`` group: the server sees only sums of client updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import MISSING

from aureon.config.registry import register

if TYPE_CHECKING:
    from aureon.secagg.params import SecAggSettings


@dataclass
class SecureAggregationConfig:
    """Secure aggregation of client updates (aureon.secagg): the server sees only sums."""

    name: str = MISSING
    enabled: bool = False


@register("secure_aggregation", "none")
@dataclass
class NoSecureAggregationConfig(SecureAggregationConfig):
    name: str = "none"


@register("secure_aggregation", "secagg_plus")
@dataclass
class SecAggPlusConfig(SecureAggregationConfig):
    """SecAgg+ (Bell et al., 2020); with ``num_shares: 0`` it is SecAgg (Bonawitz et al., 2017).

    Each client clips its weighted update to [-clipping_range, clipping_range]
    per coordinate and quantizes it to ``quantization_bits``; the sum of
    ``m`` inputs is exact up to m * clipping_range / (2**quantization_bits - 1).
    """

    name: str = "secagg_plus"
    enabled: bool = True
    num_shares: int = 0
    threshold: int = 0
    modulus_bits: int = 32
    quantization_bits: int = 24
    clipping_range: float = 4.0
    max_weight: int = 10000

    def settings(self) -> SecAggSettings:
        """The protocol's settings (imported here: aureon.secagg imports aureon.config)."""
        from aureon.secagg.params import SecAggSettings

        return SecAggSettings(
            num_shares=self.num_shares,
            threshold=self.threshold,
            modulus_bits=self.modulus_bits,
            quantization_bits=self.quantization_bits,
            clipping_range=self.clipping_range,
            max_weight=self.max_weight,
        )

    def validate(self) -> None:
        self.settings().check()
