"""Client-level DP (DP-FedAvg): the run's noise calibration and its per-round accountant.

One round releases the noised mean of the clipped updates of the clients
sampled at rate q = sampled / num_clients: a Poisson-subsampled Gaussian
mechanism on the client, the convention of McMahan et al. (2018) and Andrew
et al. (2021). The noise multiplier is calibrated once so that ``num_rounds``
such releases spend ``target_epsilon``; the accountant composes the rounds
actually released (a round that aggregated nothing released nothing) over
the same RDP orders as every other figure here (aureon/privacy/accounting.py).

With adaptive clipping the clipped count is released too; Flower's wrapper
raises the update noise so that the two releases together cost what one
Gaussian release at the calibrated multiplier costs (Andrew et al., Sec. 3.1),
which is the multiplier the accountant composes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aureon.config import ClientLevelConfig
from aureon.exceptions import ConfigError
from aureon.privacy.accounting import Calibration, WideRdpAccountant, calibrate


@dataclass(frozen=True)
class ClientLevelPlan:
    """The run's client-level noise: one Gaussian release per round at ``noise_multiplier``."""

    noise_multiplier: float  # what each round's release costs (for adaptive clipping: both releases together)
    sample_rate: float  # sampled / num_clients
    num_sampled: int
    num_clients: int
    num_rounds: int
    target_epsilon: float
    target_delta: float


def plan_client_level(
    config: ClientLevelConfig, *, num_clients: int, num_sampled: int, num_rounds: int
) -> ClientLevelPlan:
    """Calibrate the noise so that ``num_rounds`` rounds sampling ``num_sampled`` clients spend the target."""
    if not 1 <= num_sampled <= num_clients:
        raise ConfigError(f"sampled clients must be in [1, num_clients={num_clients}], got {num_sampled}")
    rate = num_sampled / num_clients
    sigma = calibrate(
        Calibration(
            accountant="rdp",
            target_epsilon=float(config.target_epsilon),
            target_delta=float(config.target_delta),
            sample_rate=rate,
            steps=num_rounds,
        )
    )
    plan = ClientLevelPlan(
        noise_multiplier=sigma,
        sample_rate=rate,
        num_sampled=num_sampled,
        num_clients=num_clients,
        num_rounds=num_rounds,
        target_epsilon=float(config.target_epsilon),
        target_delta=float(config.target_delta),
    )
    if config.clipping == "adaptive":
        check_count_noise(config, plan)
    return plan


def count_noise_stddev(config: ClientLevelConfig, num_sampled: int) -> float:
    """The noise on the clipped count: ``privacy.clipped_count_stddev``, or sampled / 20 (Andrew et al.)."""
    return config.clipped_count_stddev if config.clipped_count_stddev is not None else num_sampled / 20


def check_count_noise(config: ClientLevelConfig, plan: ClientLevelPlan) -> None:
    """Adaptive clipping needs count noise above half the multiplier, or no update noise can make up the rest."""
    stddev = count_noise_stddev(config, plan.num_sampled)
    if plan.noise_multiplier >= 2 * stddev:
        raise ConfigError(
            f"privacy.clipped_count_stddev must be > {plan.noise_multiplier / 2:.4g} (half the calibrated noise "
            f"multiplier {plan.noise_multiplier:.4g}) with privacy.clipping=adaptive, got {stddev:.4g}"
            + (" (null: sampled clients / 20)" if config.clipped_count_stddev is None else "")
            + "; set it higher, sample more clients per round, or raise privacy.target_epsilon"
        )


class ClientLevelAccountant:
    """The rounds released so far, composed with RDP; refuses the one that would pass the budget."""

    def __init__(self, *, target_epsilon: float, target_delta: float) -> None:
        self.target_epsilon = target_epsilon
        self.target_delta = target_delta
        self.releases: list[tuple[float, float]] = []  # (noise multiplier, sample rate) per released round

    @property
    def epsilon(self) -> float:
        """Epsilon at ``target_delta`` after every release so far (0 before the first)."""
        return self._epsilon(self.releases)

    def epsilon_after(self, noise_multiplier: float, sample_rate: float) -> float:
        """What the epsilon would be after one more release."""
        return self._epsilon([*self.releases, (noise_multiplier, sample_rate)])

    def would_exceed(self, noise_multiplier: float, sample_rate: float) -> bool:
        return self.epsilon_after(noise_multiplier, sample_rate) > self.target_epsilon

    def compose(self, noise_multiplier: float, sample_rate: float) -> float:
        """Record one released round; return the epsilon spent so far."""
        self.releases.append((noise_multiplier, sample_rate))
        return self.epsilon

    def _epsilon(self, releases: list[tuple[float, float]]) -> float:
        counts: dict[tuple[float, float], int] = {}
        for release in releases:
            counts[release] = counts.get(release, 0) + 1
        composed = WideRdpAccountant()
        composed.history = [(sigma, rate, steps) for (sigma, rate), steps in counts.items()]
        return composed.get_epsilon(self.target_delta)


def client_level_guarantee(config: ClientLevelConfig) -> dict[str, Any]:
    """The client-level guarantee as results.json states it: who adds the noise and what it protects."""
    return {
        "kind": f"client-level DP-FedAvg (Flower's DP wrappers, {config.clipping} clipping on the {config.clip_on})",
        "target_epsilon": config.target_epsilon,
        "delta": config.target_delta,
        "accountant": "rdp: one Poisson-subsampled Gaussian release per round at q = sampled / num_clients "
        "(Flower samples exactly that many clients each round, the DP-FedAvg convention)",
        "noise": "added by the coordinator to the mean of the clipped updates",
        "protects": "whether any one client (all of its data) took part, against whoever sees the global "
        "models; it trusts the coordinator to clip and add the noise",
        "clipping": config.clipping,
        "clip_on": config.clip_on,
    }


def guarantee_lines(privacy: dict[str, Any], *, sample_epsilon: float | None) -> list[str]:
    """Each guarantee results.json states, one line apiece: (epsilon, delta), who adds the noise, what it protects.

    ``sample_epsilon`` is the largest epsilon a client reported (the final round's).
    """
    lines: list[str] = []
    client_level = privacy.get("client_level")
    if isinstance(client_level, dict):
        lines.append(
            f"client-level DP-FedAvg: epsilon {client_level.get('epsilon_spent', 0.0):.3f} "
            f"(budget {client_level['target_epsilon']:g}), delta {client_level['delta']:g}; "
            "noise added by the coordinator; protects each client's whole data against whoever sees the "
            "global models"
        )
        sample_level = privacy.get("sample_level")
    else:
        sample_level = privacy
    if isinstance(sample_level, dict) and sample_level.get("delta") is not None and sample_epsilon is not None:
        lines.append(
            f"{sample_level.get('kind', 'sample-level DP-SGD')}: epsilon {sample_epsilon:.3f}, "
            f"delta {sample_level['delta']:g}; noise added by each client; protects each example against "
            "everyone, the coordinator included"
        )
    return lines
