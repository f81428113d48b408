"""The whole run: every group's schema under one ``AureonConfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING

from aureon.config.audit import AuditConfig
from aureon.config.automl import AutoMLConfig
from aureon.config.base import require
from aureon.config.compression import CompressionConfig
from aureon.config.dataset import DatasetConfig
from aureon.config.deployment import DeploymentConfig
from aureon.config.features import FeaturesConfig
from aureon.config.model import ModelConfig
from aureon.config.partition import PartitionConfig
from aureon.config.privacy import PrivacyConfig
from aureon.config.rules import check_aggregation, check_model_inputs
from aureon.config.secure_aggregation import SecureAggregationConfig
from aureon.config.serving import ServingConfig, TrackingConfig
from aureon.config.simulation import SimulationConfig
from aureon.config.strategy import StrategyConfig
from aureon.config.training import TrainConfig
from aureon.config.updates import AggregationConfig, FaultsConfig, NormBoundConfig, ValidationConfig

# Far beyond any experiment here; a typo such as num_rounds=1000000 would otherwise
# start a run that never ends and calibrates DP noise for a million rounds.
MAX_NUM_ROUNDS = 100_000
CHECKPOINT_FILE = "checkpoint.npz"  # written after every round into the run directory


@dataclass
class AureonConfig:
    """The whole run. Group choices live in conf/config.yaml's defaults list."""

    num_clients: int = 5
    num_rounds: int = 3
    seed: int = 0
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    features: FeaturesConfig = MISSING
    partition: PartitionConfig = MISSING
    strategy: StrategyConfig = MISSING
    privacy: PrivacyConfig = MISSING
    compression: CompressionConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    secure_aggregation: SecureAggregationConfig = MISSING
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    norm_bound: NormBoundConfig = field(default_factory=NormBoundConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)  # canaries for simulations.audit; off by default
    serving: ServingConfig = MISSING  # the dashboard's address (and simulations.serve's defaults)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)  # tracking.mlflow=<URI>: log to MLflow too
    dashboard: bool = False  # serve the live dashboard of the rounds while the run lasts
    automl: AutoMLConfig = MISSING  # the search of simulations.automl (conf/automl/)
    resume: str | None = None  # a run directory to continue from its last checkpoint
    # Show Flower's, Ray's, Hydra's and third-party libraries' log lines and warnings too
    # (otherwise the terminal shows AUREON's progress rows and summary only).
    verbose: bool = False

    def check_resume_dir(self) -> None:
        """On the machine that resumes: ``resume`` names a run directory holding a checkpoint.

        Checked by the entry points before anything heavy is imported (clients
        rebuilding the config elsewhere never read the path, so ``validate`` does not).
        """
        if self.resume is None:
            return
        folder = Path(self.resume).expanduser()
        require(
            (folder / CHECKPOINT_FILE).is_file(),
            "resume",
            self.resume,
            f"the directory of a run that completed at least one round (one holding {CHECKPOINT_FILE})",
        )

    def validate(self) -> None:
        require(self.num_clients >= 1, "num_clients", self.num_clients, "an integer >= 1")
        require(
            1 <= self.num_rounds <= MAX_NUM_ROUNDS,
            "num_rounds",
            self.num_rounds,
            f"an integer in [1, {MAX_NUM_ROUNDS}]",
        )
        require(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        for part in (
            self.dataset,
            self.features,
            self.partition,
            self.strategy,
            self.privacy,
            self.compression,
            self.train,
            self.simulation,
            self.secure_aggregation,
            self.validation,
            self.norm_bound,
            self.aggregation,
            self.faults,
            self.deployment,
            self.serving,
            self.tracking,
            self.audit,
            self.automl,
        ):
            check = getattr(part, "validate", None)
            if check is not None:
                check()
        check_aggregation(self)
        check_model_inputs(self)
