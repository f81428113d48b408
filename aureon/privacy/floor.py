"""The client's privacy floor: what the client's operator accepts, whatever the server asks.

The coordinator is the party a client's guarantee is for, so nothing it sends
may weaken that guarantee unnoticed. The floor is set on the client's side
(``python -m clients --max-epsilon ... --max-delta ...``), travels in the
SuperNode's node config (which the server cannot change), and every train
request is checked against it before any private data is touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aureon import keys
from aureon.config import PrivacyConfig
from aureon.exceptions import PrivacyRefused

if TYPE_CHECKING:
    from flwr.app import UserConfigValue  # a type only: checking a floor must not load Flower

# The client measures its lifetime spend with Renyi DP at its own max_delta, whatever
# accountant or delta a run asks for: RDP is a rigorous upper bound, and a server must
# not pick a looser approximation (gdp) or a larger delta to stretch the floor.
FLOOR_ACCOUNTANT: Final = "rdp"


@dataclass(frozen=True)
class PrivacyFloor:
    """The weakest privacy a client accepts.

    ``max_epsilon`` bounds the epsilon spent on this client's data over its
    whole life (every run, every round), not one run's target.
    """

    require_dp: bool = False
    max_epsilon: float = math.inf
    max_delta: float = 1.0
    deployment: bool = False

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, UserConfigValue]) -> PrivacyFloor:
        """The floor a SuperNode was started with (simulation: no floor but the run's own)."""
        return cls(
            require_dp=bool(node_config.get(keys.NODE_REQUIRE_DP, False)),
            max_epsilon=float(node_config.get(keys.NODE_MAX_EPSILON, math.inf)),
            max_delta=float(node_config.get(keys.NODE_MAX_DELTA, 1.0)),
            deployment=bool(node_config.get(keys.NODE_DEPLOYMENT, False)),
        )

    def node_config(self) -> dict[str, bool | float]:
        """The node-config entries that carry this floor to the ClientApp."""
        return {
            keys.NODE_REQUIRE_DP: self.require_dp,
            keys.NODE_MAX_EPSILON: self.max_epsilon,
            keys.NODE_MAX_DELTA: self.max_delta,
            keys.NODE_DEPLOYMENT: self.deployment,
        }

    def validate(self) -> None:
        """Reject a floor that means nothing (checked where the operator sets it)."""
        if not (math.isfinite(self.max_epsilon) and self.max_epsilon > 0):
            raise PrivacyRefused(f"--max-epsilon must be a finite number > 0, got {self.max_epsilon}")
        if not 0 < self.max_delta < 1:
            raise PrivacyRefused(f"--max-delta must be in (0, 1), got {self.max_delta}")

    def check_request(self, privacy: PrivacyConfig) -> None:
        """Refuse a run whose privacy settings are weaker than this floor, naming the setting."""
        dp_sgd = privacy.dp_sgd()
        if dp_sgd is None:
            if self.require_dp:
                raise PrivacyRefused(
                    f"the server asked for privacy={privacy.name}; this client requires DP-SGD "
                    "(its operator can allow it with --allow-no-dp)"
                )
            return
        if dp_sgd.reproducible_noise and self.deployment:
            raise PrivacyRefused(
                "the server asked for privacy.reproducible_noise=true, which derives the DP noise "
                "from the run seed the server knows; a deployed client always draws its own noise"
            )
        if dp_sgd.target_delta > self.max_delta:
            raise PrivacyRefused(
                f"the server asked for privacy.target_delta={dp_sgd.target_delta}; "
                f"this client accepts at most {self.max_delta} (--max-delta)"
            )
        if dp_sgd.target_epsilon > self.max_epsilon:
            raise PrivacyRefused(
                f"the server asked for privacy.target_epsilon={dp_sgd.target_epsilon}; "
                f"this client spends at most {self.max_epsilon} on its data (--max-epsilon)"
            )

    def check_spend(self, *, spent: float, projected: float, delta: float) -> None:
        """Refuse a round that would take the data's lifetime epsilon past ``max_epsilon``."""
        if projected > self.max_epsilon:
            raise PrivacyRefused(
                f"this client's data has spent epsilon {spent:.3f} (delta={delta}) of its "
                f"--max-epsilon={self.max_epsilon}; another round would reach {projected:.3f}"
            )
