"""``features`` group: a fixed transform of images, or a feature pipeline fitted on tables."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register


@dataclass
class FeaturesConfig:
    """A fixed, data-independent transform applied to every image before training.

    Fixed transforms cost no privacy: they learn nothing from the data.
    """

    name: str = MISSING

    def maps_per_channel(self) -> int:
        """How many feature maps each image channel becomes: what a model sized by maps must fit."""
        return 1

    def save_fitted(self, dataset: Any, seed: int, run_dir: Any) -> None:
        """Write what the transform learned from the data beside the model; a fixed transform has nothing."""

    def statistics_guarantee(self, dataset: Any, seed: int) -> dict[str, Any] | None:
        """What the clients released to fit the features, and under which DP; None: nothing released."""
        return None


@register("features", "none", builder="aureon.features.prepare.unchanged")
@dataclass
class NoFeaturesConfig(FeaturesConfig):
    name: str = "none"


@register("features", "scattering", builder="aureon.features.prepare.scattered")
@dataclass
class ScatteringFeaturesConfig(FeaturesConfig):
    """A 2D scattering transform (kymatio): wavelet moduli, averaged over 2^J pixels."""

    name: str = "scattering"
    J: int = 2
    orientations: int = 8
    cache_dir: str | None = None  # null: $XDG_CACHE_HOME/aureon/features or ~/.cache/...

    def maps_per_channel(self) -> int:
        return scattering_maps(self.J, self.orientations)

    def validate(self) -> None:
        require(1 <= self.J <= 4, "features.J", self.J, "an integer in [1, 4]")
        require(
            1 <= self.orientations <= 16,
            "features.orientations",
            self.orientations,
            "an integer in [1, 16]",
        )


def scattering_maps(J: int, orientations: int) -> int:
    """Maps per image channel a scattering transform gives: 1 + JL + L^2 J(J-1)/2."""
    return 1 + J * orientations + orientations**2 * J * (J - 1) // 2


# ------------------------------------------------------------------------ tables

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent")
MIN_SCORE_ROWS = 100  # below this the nearest-neighbour estimate of mutual information is mostly noise


@dataclass
class TabularFeaturesConfig(FeaturesConfig):
    """A feature pipeline for tables, fitted from federated statistics (aureon.features.tabular).

    Every client sends aggregates of its rows (counts, sums, histograms,
    category counts), never the rows; the fitted pipeline is the same on every
    client and is saved with the model. ``clients`` and ``partition`` are the
    run's (conf/features/*.yaml interpolate them): in simulation the fit asks
    each partition. ``centralized``: fit on the pooled rows instead, for comparison.
    Missing numeric values are imputed (``impute``); categorical columns are
    one-hot encoded against a vocabulary of categories with a total count of at
    least ``min_count`` held by at least ``min_clients`` clients (the rest: one
    "other" column), at most ``max_categories`` per column (more is an error).
    ``dp_epsilon`` (null: off): Gaussian noise on every released statistic,
    spending (dp_epsilon, dp_delta) per client for the whole fit; values are
    clipped into ``bounds[column] = [low, high]``, which must be given for every
    numeric column (they set the noise's sensitivity, and replace min/max).
    ``secure_aggregation``: the clients' answers are summed under AUREON's SecAgg
    (aureon.features.tabular.secure_statistics), so the coordinator holds sums
    only; it also needs ``bounds`` for every numeric column (they set the
    quantization scale and replace min/max), ``secure_max_rows`` bounds any
    client's rows, and ``secure_threshold`` (0: a strict majority) is how many
    clients must survive each protocol run.
    """

    clients: int = 1
    partition: Any = None  # the run's partition config; None: equal contiguous shares
    centralized: bool = False
    impute: str = "mean"
    min_count: float = 5.0
    min_clients: int = 2
    max_categories: int = 50
    histogram_bins: int = 256
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    bounds: dict[str, list[Any]] = field(default_factory=dict)  # numbers; Any lets `{age: [0, 100]}` in
    secure_aggregation: bool = False
    secure_max_rows: int = 1_000_000
    secure_threshold: int = 0

    def scaling(self) -> str:
        """How numeric columns are scaled: "standard", "minmax" or "none"."""
        return "none"

    def quantile_bins(self) -> int:
        """Quantile bins per numeric column; 0: no binning."""
        return 0

    def generated_features(self) -> int:
        """How many generated features to keep; 0: none."""
        return 0

    def scoring_rows(self) -> int | None:
        """At most how many of its rows a client scores generated features on; None: all."""
        return None

    def save_fitted(self, dataset: Any, seed: int, run_dir: Any) -> None:
        from aureon.features.tabular.prepare import save_fitted

        save_fitted(dataset, seed, self, run_dir)

    def statistics_guarantee(self, dataset: Any, seed: int) -> dict[str, Any] | None:
        from aureon.features.tabular.prepare import statistics_guarantee

        return statistics_guarantee(dataset, seed, self)

    def validate(self) -> None:
        require(self.clients >= 1, "features.clients", self.clients, "an integer >= 1")
        require(self.impute in IMPUTE_STRATEGIES, "features.impute", self.impute, f"one of {list(IMPUTE_STRATEGIES)}")
        require(self.min_count >= 0, "features.min_count", self.min_count, ">= 0")
        require(self.min_clients >= 1, "features.min_clients", self.min_clients, "an integer >= 1")
        require(self.max_categories >= 1, "features.max_categories", self.max_categories, "an integer >= 1")
        require(2 <= self.histogram_bins <= 100_000, "features.histogram_bins", self.histogram_bins, "in [2, 100000]")
        if self.dp_epsilon is not None:
            require(self.dp_epsilon > 0, "features.dp_epsilon", self.dp_epsilon, "> 0, or null for no noise")
            require(0 < self.dp_delta < 1, "features.dp_delta", self.dp_delta, "in (0, 1)")
        for column, bound in self.bounds.items():
            require(_is_interval(bound), f"features.bounds.{column}", bound, "[low, high], two numbers with low < high")
        if self.secure_aggregation:
            self._validate_secure()

    def _validate_secure(self) -> None:
        """Refuse what the protocol cannot run: too few clients, a bad threshold, inexact counts."""
        from aureon.features.tabular.secure_sum import count_error_bound

        require(
            self.centralized or self.clients >= 2,
            "features.clients",
            self.clients,
            "an integer >= 2 under features.secure_aggregation=true (a sum of one client is its answer)",
        )
        require(self.secure_max_rows >= 1, "features.secure_max_rows", self.secure_max_rows, "an integer >= 1")
        size = max(self.clients, 2)
        low = max(2, size // 2 + 1)
        require(
            self.secure_threshold == 0 or low <= self.secure_threshold <= size,
            "features.secure_threshold",
            self.secure_threshold,
            f"0 (strict majority) or in [{low}, {size}]: more than half of the {size} clients, so no "
            "minority can unmask anyone",
        )
        bound = count_error_bound(clients=size, max_rows=self.secure_max_rows)
        require(
            bound < 0.5,
            "features.secure_max_rows",
            self.secure_max_rows,
            f"small enough that {size} clients' counts stay exact after quantization "
            f"(error bound {bound:.3g} must be < 0.5)",
        )


def _is_interval(bound: Any) -> bool:
    if not isinstance(bound, list | tuple) or len(bound) != 2:
        return False
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bound):
        return False
    return math.isfinite(bound[0]) and math.isfinite(bound[1]) and bound[0] < bound[1]


@register("features", "standardize", builder="aureon.features.tabular.prepare.fitted")
@dataclass
class StandardizeFeaturesConfig(TabularFeaturesConfig):
    """Zero mean, unit variance per numeric column (federated mean and variance)."""

    name: str = "standardize"

    def scaling(self) -> str:
        return "standard"


@register("features", "minmax", builder="aureon.features.tabular.prepare.fitted")
@dataclass
class MinMaxFeaturesConfig(TabularFeaturesConfig):
    """Each numeric column scaled to [0, 1] by its federated min and max."""

    name: str = "minmax"

    def scaling(self) -> str:
        return "minmax"


@register("features", "impute", builder="aureon.features.tabular.prepare.fitted")
@dataclass
class ImputeFeaturesConfig(TabularFeaturesConfig):
    """Missing values filled (mean, median or most frequent, from federated statistics), nothing scaled."""

    name: str = "impute"
    impute: str = "median"


@register("features", "onehot", builder="aureon.features.tabular.prepare.fitted")
@dataclass
class OneHotFeaturesConfig(TabularFeaturesConfig):
    """Categorical columns one-hot encoded on the federated vocabulary; numeric columns standardized."""

    name: str = "onehot"

    def scaling(self) -> str:
        return "standard"


@register("features", "quantile_bins", builder="aureon.features.tabular.prepare.fitted")
@dataclass
class QuantileBinsFeaturesConfig(TabularFeaturesConfig):
    """Each numeric column replaced by its quantile bin (edges from federated histograms), scaled to [0, 1]."""

    name: str = "quantile_bins"
    bins: int = 10

    def quantile_bins(self) -> int:
        return self.bins

    def validate(self) -> None:
        super().validate()
        require(2 <= self.bins <= self.histogram_bins, "features.bins", self.bins, "in [2, features.histogram_bins]")


@register("features", "generate", builder="aureon.features.tabular.prepare.fitted")
@dataclass
class GenerateFeaturesConfig(TabularFeaturesConfig):
    """Standardized columns plus generated ones (products, ratios, logs, squares, differences).

    Candidates pair the ``pair_columns`` numeric columns that score best alone;
    every client scores the candidates on its own rows (mutual information),
    the server averages the scores and keeps the best ``max_features``. The
    scores are not a DP release, so this option refuses ``dp_epsilon``.
    ``score_rows`` (null: every row): a client with more rows scores on that
    many of them, drawn with its own randomness and stratified by class, so a
    rare class keeps its rows (the centralized fit scores on ``clients`` times
    as many, what the federation scores on together).
    """

    name: str = "generate"
    max_features: int = 20
    pair_columns: int = 8
    score_rows: int | None = 5000

    def scaling(self) -> str:
        return "standard"

    def generated_features(self) -> int:
        return self.max_features

    def scoring_rows(self) -> int | None:
        if self.score_rows is None or not self.centralized:
            return self.score_rows
        return self.score_rows * self.clients

    def validate(self) -> None:
        super().validate()
        require(self.max_features >= 1, "features.max_features", self.max_features, "an integer >= 1")
        require(2 <= self.pair_columns <= 64, "features.pair_columns", self.pair_columns, "in [2, 64]")
        require(
            self.score_rows is None or (isinstance(self.score_rows, int) and self.score_rows >= MIN_SCORE_ROWS),
            "features.score_rows",
            self.score_rows,
            f"an integer >= {MIN_SCORE_ROWS}, or null to score on every row",
        )
        require(
            self.dp_epsilon is None,
            "features.dp_epsilon",
            self.dp_epsilon,
            "null for features=generate (the clients' selection scores are not a DP release)",
        )
        require(
            not self.secure_aggregation,
            "features.secure_aggregation",
            self.secure_aggregation,
            "false for features=generate (each client's selection scores are sent, not summed)",
        )
