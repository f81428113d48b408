"""``deployment``: dropout tolerance and checkpoints of the round loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aureon.config.base import require


@dataclass
class DeploymentConfig:
    """Dropout tolerance and checkpoints of the round loop (deployment and simulation alike).

    ``null`` node counts mean "every client" (``num_clients``); ``round_timeout``
    bounds how long a round waits for replies before it goes on without the
    missing ones.
    """

    min_available_nodes: int | None = None
    min_train_nodes: int | None = None
    round_timeout: float = 600.0
    checkpoint: bool = True

    def validate(self) -> None:
        for key in ("min_available_nodes", "min_train_nodes"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"deployment.{key}", value, "null or an integer >= 1")
        require(
            math.isfinite(self.round_timeout) and self.round_timeout > 0,
            "deployment.round_timeout",
            self.round_timeout,
            "a finite number of seconds > 0",
        )
