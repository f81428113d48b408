"""``simulation``: resources for Flower's Simulation Engine."""

from __future__ import annotations

from dataclasses import dataclass

from aureon.config.base import require


@dataclass
class SimulationConfig:
    """Resources for Flower's Simulation Engine (Ray backend)."""

    client_cpus: float = 1.0
    client_gpus: float = 0.0
    ray_address: str | None = None  # "auto" joins an existing Ray cluster
    round_timeout: float = 3600.0

    def validate(self) -> None:
        require(self.client_cpus > 0, "simulation.client_cpus", self.client_cpus, "> 0")
        require(self.client_gpus >= 0, "simulation.client_gpus", self.client_gpus, ">= 0")
        require(
            self.round_timeout > 0,
            "simulation.round_timeout",
            self.round_timeout,
            "> 0",
        )
