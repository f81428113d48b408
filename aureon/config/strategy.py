"""``strategy`` group: server strategies, the robust ones with their client-count rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register


@dataclass
class StrategyConfig:
    """A server strategy. ``federated`` is False only for the centralized baseline."""

    # True for strategies that look at each update (robust aggregators): secure
    # aggregation, which shows the server only the sum, cannot serve them.
    aggregates_per_update: ClassVar[bool] = False
    # True for strategies whose aggregate is the plain weighted mean (FedAvg's): the only
    # aggregate whose sensitivity client-level DP (DP-FedAvg) is calibrated for.
    plain_mean: ClassVar[bool] = False

    name: str = MISSING
    federated: bool = True
    fraction_train: float = 1.0

    def validate(self) -> None:
        require(
            0.0 < self.fraction_train <= 1.0,
            "strategy.fraction_train",
            self.fraction_train,
            "in (0, 1]",
        )

    def check_sampled(self, sampled: int) -> None:
        """Refuse a round of ``sampled`` clients too small for this strategy's guarantee."""


@register("strategy", "fedavg", builder="aureon.strategies.build.fedavg")
@dataclass
class FedAvgConfig(StrategyConfig):
    plain_mean: ClassVar[bool] = True
    name: str = "fedavg"


@register("strategy", "fedprox", builder="aureon.strategies.build.fedprox")
@dataclass
class FedProxConfig(StrategyConfig):
    plain_mean: ClassVar[bool] = True
    name: str = "fedprox"
    proximal_mu: float = 0.01

    def validate(self) -> None:
        super().validate()
        require(self.proximal_mu >= 0, "strategy.proximal_mu", self.proximal_mu, ">= 0")


@register("strategy", "fedadam", builder="aureon.strategies.build.fedadam")
@dataclass
class FedAdamConfig(StrategyConfig):
    name: str = "fedadam"
    eta: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.99
    tau: float = 1e-3

    def validate(self) -> None:
        super().validate()
        require(self.eta > 0, "strategy.eta", self.eta, "> 0")
        require(0 <= self.beta_1 < 1, "strategy.beta_1", self.beta_1, "in [0, 1)")
        require(0 <= self.beta_2 < 1, "strategy.beta_2", self.beta_2, "in [0, 1)")
        require(self.tau > 0, "strategy.tau", self.tau, "> 0")


@register("strategy", "centralized")
@dataclass
class CentralizedConfig(StrategyConfig):
    """Pool every client's data and train one model: the baseline for a federated run."""

    name: str = "centralized"
    federated: bool = False


# ---------------------------------------------------- robust strategies (Flower's)
@register("strategy", "krum", builder="aureon.strategies.build.krum")
@dataclass
class KrumConfig(StrategyConfig):
    """Krum (Blanchard et al., 2017): keep the update closest to its n - f - 2 nearest others."""

    aggregates_per_update: ClassVar[bool] = True

    name: str = "krum"
    num_malicious_nodes: int = 1

    def validate(self) -> None:
        super().validate()
        require(
            self.num_malicious_nodes >= 0,
            "strategy.num_malicious_nodes",
            self.num_malicious_nodes,
            ">= 0",
        )

    def check_sampled(self, sampled: int) -> None:
        """Krum's guarantee needs n > 2f + 2 sampled clients."""
        require(
            sampled > 2 * self.num_malicious_nodes + 2,
            "strategy.num_malicious_nodes",
            self.num_malicious_nodes,
            f"small enough that {sampled} sampled clients > 2 * num_malicious_nodes + 2",
        )


@register("strategy", "multikrum", builder="aureon.strategies.build.multikrum")
@dataclass
class MultiKrumConfig(KrumConfig):
    """Multi-Krum: average the ``num_nodes_to_select`` updates with the best Krum scores."""

    name: str = "multikrum"
    num_nodes_to_select: int = 3

    def validate(self) -> None:
        super().validate()
        require(
            self.num_nodes_to_select >= 1,
            "strategy.num_nodes_to_select",
            self.num_nodes_to_select,
            ">= 1",
        )

    def check_sampled(self, sampled: int) -> None:
        super().check_sampled(sampled)
        require(
            self.num_nodes_to_select <= sampled - self.num_malicious_nodes,
            "strategy.num_nodes_to_select",
            self.num_nodes_to_select,
            f"<= sampled clients - num_malicious_nodes = {sampled - self.num_malicious_nodes}",
        )


@register("strategy", "bulyan", builder="aureon.strategies.build.bulyan")
@dataclass
class BulyanConfig(KrumConfig):
    """Bulyan (El Mhamdi et al., 2018): Multi-Krum selection, then a trimmed median."""

    name: str = "bulyan"

    def check_sampled(self, sampled: int) -> None:
        """Flower's Bulyan skips every round with fewer than 4f + 3 replies."""
        require(
            sampled >= 4 * self.num_malicious_nodes + 3,
            "strategy.num_malicious_nodes",
            self.num_malicious_nodes,
            f"small enough that {sampled} sampled clients >= 4 * num_malicious_nodes + 3",
        )


@register("strategy", "fedmedian", builder="aureon.strategies.build.fedmedian")
@dataclass
class FedMedianConfig(StrategyConfig):
    """Coordinate-wise median of the client models (Yin et al., 2018)."""

    aggregates_per_update: ClassVar[bool] = True

    name: str = "fedmedian"


@register("strategy", "fedtrimmedavg", builder="aureon.strategies.build.fedtrimmedavg")
@dataclass
class FedTrimmedAvgConfig(StrategyConfig):
    """Coordinate-wise mean after cutting a ``beta`` fraction from each tail (Yin et al., 2018)."""

    aggregates_per_update: ClassVar[bool] = True

    name: str = "fedtrimmedavg"
    beta: float = 0.2

    def validate(self) -> None:
        super().validate()
        require(0.0 <= self.beta < 0.5, "strategy.beta", self.beta, "in [0, 0.5)")
