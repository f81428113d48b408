"""The one owner of DP-SGD in a round: the plan, the noise source, Opacus' engine, the charge.

The client, the centralized baseline and (later) AutoML trials all train
privately through this object; the training loop only calls ``attach`` and
``detach`` around its steps, and never learns how Opacus is wired.
"""

from __future__ import annotations

from dataclasses import dataclass

from opacus import PrivacyEngine
from opacus.grad_sample import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn
from torch.utils.data import DataLoader, Dataset

from aureon.config import DpSgdConfig, TrainConfig
from aureon.privacy.accounting import DpPlan, plan_dp
from aureon.privacy.entropy import privacy_generator
from aureon.privacy.floor import PrivacyFloor
from aureon.privacy.ledger import PrivacyLedger, charge


@dataclass(frozen=True)
class PrivateParts:
    """What Opacus made of the model, optimizer, criterion and data for one round."""

    module: GradSampleModule
    optimizer: DPOptimizer
    criterion: nn.Module
    loader: DataLoader


@dataclass(frozen=True)
class PrivateTraining:
    """DP-SGD for one party's data under ``plan``.

    ``noise_seed`` is the benchmark opt-in of reproducible noise; ``None``
    (the default, and the only choice in deployment) draws the noise and the
    Poisson batches from local entropy.
    """

    plan: DpPlan
    noise_seed: int | None = None

    @classmethod
    def calibrated(
        cls,
        privacy: DpSgdConfig,
        *,
        num_examples: int,
        train: TrainConfig,
        num_rounds: int,
        noise_seed: int | None = None,
    ) -> PrivateTraining:
        """Noise calibrated once for every step of the whole run."""
        plan = plan_dp(
            privacy,
            num_examples=num_examples,
            batch_size=train.batch_size,
            local_epochs=train.local_epochs,
            num_rounds=num_rounds,
        )
        return cls(plan=plan, noise_seed=noise_seed)

    def charge(
        self, ledger: PrivacyLedger, *, run: str, server_round: int, floor: PrivacyFloor | None = None
    ) -> PrivacyLedger:
        """The ledger with this round charged (before it trains), or a refusal."""
        return charge(ledger, plan=self.plan, floor=floor or PrivacyFloor(), run=run, server_round=server_round)

    def epsilon(self, ledger: PrivacyLedger) -> float:
        """What ``ledger`` has spent, at the plan's delta and accountant."""
        return ledger.epsilon(delta=self.plan.target_delta, accountant=self.plan.accountant)

    def attach(
        self, *, model: nn.Module, optimizer: object, criterion: nn.Module, dataset: Dataset, batch_size: int
    ) -> PrivateParts:
        """Opacus' ``make_private`` under the plan: Poisson batches and noise from one local generator."""
        generator = privacy_generator(self.noise_seed)
        loader = DataLoader(dataset, batch_size=batch_size, generator=generator)
        engine = PrivacyEngine(accountant=self.plan.accountant)
        arguments = {
            "module": model,
            "optimizer": optimizer,
            "data_loader": loader,
            "noise_multiplier": self.plan.noise_multiplier,
            "max_grad_norm": self.plan.max_grad_norm,
            "poisson_sampling": True,
            "grad_sample_mode": self.plan.grad_sample_mode,
            "noise_generator": generator,
        }
        if "ghost" in self.plan.grad_sample_mode:  # ghost clipping also wraps the criterion
            module, private_optimizer, private_criterion, private_loader = engine.make_private(
                criterion=criterion, **arguments
            )
        else:
            module, private_optimizer, private_loader = engine.make_private(**arguments)
            private_criterion = criterion
        return PrivateParts(module, private_optimizer, private_criterion, private_loader)

    @staticmethod
    def detach(parts: PrivateParts) -> None:
        """Leave the plain model as it was: Opacus' hooks and per-sample attributes removed."""
        parts.module.remove_hooks()
        parts.module.cleanup()
