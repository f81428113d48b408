"""Protocol parameters: what the config asks for, resolved for one round's participants.

The same checks run when the config is validated (for the expected number of
sampled clients) and when a round starts (for the clients actually sampled),
so a setting that cannot work is refused before any training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from aureon.exceptions import ConfigError
from aureon.secagg import fixed_point, ring

_WHERE: Final = "(conf/secure_aggregation/secagg_plus.yaml or the command line)"


def _require(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"secure_aggregation.{key} must be {expected}, got {value!r} {_WHERE}")


@dataclass(frozen=True)
class SecAggSettings:
    """The user's choices: 0 for num_shares / threshold means "all" / "strict majority"."""

    num_shares: int
    threshold: int
    modulus_bits: int
    quantization_bits: int
    clipping_range: float
    max_weight: int

    def check(self) -> None:
        """Ranges that do not depend on how many clients take part."""
        _require(
            self.num_shares == 0 or (self.num_shares >= 3 and self.num_shares % 2 == 1),
            "num_shares",
            self.num_shares,
            "0 (every sampled client: plain SecAgg) or an odd number >= 3 (SecAgg+ neighbourhood)",
        )
        _require(self.threshold >= 0, "threshold", self.threshold, ">= 0 (0: strict majority)")
        _require(
            2 <= self.modulus_bits <= ring.MAX_MODULUS_BITS,
            "modulus_bits",
            self.modulus_bits,
            f"in [2, {ring.MAX_MODULUS_BITS}]",
        )
        _require(
            1 <= self.quantization_bits < self.modulus_bits
            and self.quantization_bits <= fixed_point.MAX_QUANTIZATION_BITS,
            "quantization_bits",
            self.quantization_bits,
            f"in [1, min(modulus_bits - 1, {fixed_point.MAX_QUANTIZATION_BITS})]",
        )
        _require(
            math.isfinite(self.clipping_range) and self.clipping_range > 0,
            "clipping_range",
            self.clipping_range,
            "a finite number > 0",
        )
        _require(self.max_weight >= 1, "max_weight", self.max_weight, "an integer >= 1")

    def for_round(self, num_clients: int) -> RoundParams:
        """Effective neighbourhood and threshold for ``num_clients`` participants, checked."""
        self.check()
        if num_clients < 2:
            raise ConfigError(
                f"secure aggregation needs at least 2 sampled clients, got {num_clients} "
                "(num_clients * strategy.fraction_train)"
            )
        size = num_clients if self.num_shares == 0 else min(self.num_shares, num_clients)
        threshold = self.threshold or size // 2 + 1
        _require(
            size // 2 < threshold <= size and threshold >= 2,
            "threshold",
            self.threshold,
            f"0 or in [{max(2, size // 2 + 1)}, {size}]: more than half of the {size} clients "
            "each secret is shared among, so no minority can unmask anyone",
        )
        largest_sum = num_clients * ((1 << self.quantization_bits) - 1)
        _require(
            largest_sum < (1 << self.modulus_bits),
            "modulus_bits",
            self.modulus_bits,
            f"large enough that {num_clients} clients x (2**quantization_bits - 1) = "
            f"{largest_sum} stays below 2**modulus_bits (raise it to "
            f">= {largest_sum.bit_length()} or lower quantization_bits)",
        )
        _require(
            num_clients * self.max_weight < (1 << self.modulus_bits),
            "max_weight",
            self.max_weight,
            f"small enough that {num_clients} x max_weight stays below 2**modulus_bits",
        )
        return RoundParams(
            num_clients=num_clients,
            neighbourhood_size=size,
            threshold=threshold,
            modulus_bits=self.modulus_bits,
            quantization_bits=self.quantization_bits,
            clipping_range=self.clipping_range,
            max_weight=self.max_weight,
        )


@dataclass(frozen=True)
class RoundParams:
    """Parameters of one protocol run, sent to every participant in stage 0."""

    num_clients: int
    neighbourhood_size: int
    threshold: int
    modulus_bits: int
    quantization_bits: int
    clipping_range: float
    max_weight: int

    def sum_error_bound(self, count: int) -> float:
        """Per-coordinate bound on |secure sum - sum of clipped, weight-scaled inputs|."""
        return fixed_point.sum_error_bound(count=count, clipping_range=self.clipping_range, bits=self.quantization_bits)
