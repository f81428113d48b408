"""Fit a feature pipeline from federated answers only: what the server does with them.

The numbers come from the merged answers of ``federation``: mean and variance
from sums, min/max, quantiles and modes from histograms on edges spanning the
federated range (or the declared bounds under DP), the vocabulary from summed
category counts and how many clients hold each category, generated features
from the row-weighted mean of the clients' scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aureon.config.features import TabularFeaturesConfig
from aureon.exceptions import ConfigError, DataError
from aureon.features.tabular import privacy
from aureon.features.tabular.categories import MISSING_TOKEN, vocabulary
from aureon.features.tabular.federation import Federation, ScoreRequest
from aureon.features.tabular.generation import candidates
from aureon.features.tabular.histogram import equal_width_edges, quantiles
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.secure_statistics import secure_statistics
from aureon.features.tabular.secure_sum import QUANTIZATION_BITS
from aureon.features.tabular.statistics import (
    TARGET_COLUMN,
    NoiseSpec,
    StatisticsAnswer,
    StatisticsQuery,
    category_holders,
    merge_answers,
)
from aureon.features.tabular.summary import merge_summaries


@dataclass(frozen=True)
class Columns:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    task: str
    target: str = "target"  # the target column's name (its ``features.bounds`` entry under DP)


TARGET_RELEASES = 4  # a target query's noised vectors: counts with missing counts, sums, squares, rows


def _noise(config: TabularFeaturesConfig, columns: Columns, releases: int) -> NoiseSpec | None:
    if config.dp_epsilon is None:
        return None
    unbounded = [c for c in columns.numeric if c not in config.bounds]
    if unbounded:
        raise ConfigError(
            f"features.bounds must give [low, high] for every numeric column under features.dp_epsilon, "
            f"got none for {unbounded} (e.g. features.bounds={{{unbounded[0]}: [0, 100]}})"
        )
    low = np.array([float(config.bounds[c][0]) for c in columns.numeric])
    high = np.array([float(config.bounds[c][1]) for c in columns.numeric])
    multiplier = privacy.noise_multiplier(epsilon=config.dp_epsilon, delta=config.dp_delta, releases=releases)
    return NoiseSpec(multiplier=multiplier, low=low, high=high)


def _secure(config: TabularFeaturesConfig) -> bool:
    return config.secure_aggregation and not config.centralized


def _bounds(config: TabularFeaturesConfig, names: tuple[str, ...], what: str) -> tuple[np.ndarray, np.ndarray]:
    """The declared [low, high] of ``names``; secure aggregation scales and clips by them."""
    unbounded = [c for c in names if c not in config.bounds]
    if unbounded:
        raise ConfigError(
            f"features.bounds must give [low, high] for {what} {unbounded} under features.secure_aggregation=true "
            f"(they bound what is summed and stand in for min/max), got none "
            f"(e.g. features.bounds={{{unbounded[0]}: [0, 100]}})"
        )
    low = np.array([float(config.bounds[c][0]) for c in names])
    high = np.array([float(config.bounds[c][1]) for c in names])
    return low, high


def _statistics(
    config: TabularFeaturesConfig,
    federation: Federation,
    query: StatisticsQuery,
    bounds: tuple[np.ndarray, np.ndarray] | None,
) -> list[StatisticsAnswer]:
    """Every client's answer, or (``bounds`` given: secure aggregation) their one secure sum."""
    if bounds is None:
        return federation.statistics(query)
    answer = secure_statistics(
        federation,
        query,
        low=bounds[0],
        high=bounds[1],
        max_rows=config.secure_max_rows,
        threshold=config.secure_threshold,
        min_count=config.min_count,
        min_clients=config.min_clients,
    )
    return [answer]


def _needs_histogram(config: TabularFeaturesConfig) -> bool:
    return config.impute in ("median", "most_frequent") or config.quantile_bins() > 0


def fit_pipeline(
    config: TabularFeaturesConfig, columns: Columns, federation: Federation, *, seed: int
) -> FittedPipeline:
    """The pipeline ``config`` describes, fitted from ``federation``'s answers."""
    numeric, categorical = columns.numeric, columns.categorical
    private = config.dp_epsilon is not None
    secure = _secure(config)
    histogram = _needs_histogram(config) and bool(numeric)
    # Under DP the edges come from the declared bounds, so one query (one release each) suffices.
    releases = StatisticsQuery(numeric, categorical, edges=np.zeros((1, 2)) if histogram else None).releases()
    releases += 1  # the row count
    if secure and categorical:
        releases += 1  # the bucket round that agrees on the category list
    if columns.task == "regression":
        releases += TARGET_RELEASES
    noise = _noise(config, columns, releases)
    bounds = _bounds(config, numeric, "every numeric column") if secure else None
    first_edges = None
    if private and histogram and noise is not None:
        first_edges = equal_width_edges(noise.low, noise.high, bins=config.histogram_bins)
    elif bounds is not None and histogram:
        first_edges = equal_width_edges(bounds[0], bounds[1], bins=config.histogram_bins)
    answers = _statistics(
        config, federation, StatisticsQuery(numeric, categorical, edges=first_edges, noise=noise), bounds
    )
    merged = merge_answers(answers)
    holders = category_holders(answers)
    summary = merged.summary
    if summary is None:
        raise DataError("the clients' statistics answer holds no summary")
    short = [c for c, n in zip(numeric, summary.count, strict=True) if n <= 0]
    if short:
        raise DataError(f"numeric column(s) {short} have no value on any client")
    hist, edges = merged.histograms, first_edges
    if histogram and hist is None:
        edges = equal_width_edges(summary.minimum, summary.maximum, bins=config.histogram_bins)
        hist = merge_answers(
            federation.statistics(StatisticsQuery(numeric, categorical, summary=False, edges=edges))
        ).histograms

    impute = _impute_values(config, summary.mean, hist, edges, len(numeric))
    offset, scale = _scaling(config.scaling(), summary.mean, summary.variance, summary.minimum, summary.maximum)
    generated: tuple[tuple[str, int, int], ...] = ()
    if config.generated_features() > 0 and numeric:
        generated, gen_offset, gen_scale = _generate(config, columns, federation, impute, seed=seed)
        offset, scale = np.concatenate([offset, gen_offset]), np.concatenate([scale, gen_scale])
    bin_edges = None
    if config.quantile_bins() > 0 and numeric and hist is not None and edges is not None:
        probabilities = np.linspace(0.0, 1.0, config.quantile_bins() + 1)
        bin_edges = quantiles(hist, edges, probabilities)
    vocabularies = {
        column: vocabulary(
            merged.categories.get(column, {}),
            holders.get(column, {}),
            column=column,
            min_count=config.min_count,
            min_clients=1 if config.centralized else config.min_clients,
            max_categories=config.max_categories,
        )
        for column in categorical
    }
    fill = {}
    if config.impute == "most_frequent":
        for column in categorical:
            counts = {k: v for k, v in merged.categories.get(column, {}).items() if k != MISSING_TOKEN}
            if counts:
                fill[column] = max(sorted(counts), key=lambda k: counts[k])
    fitted_on: dict[str, Any] = {
        "strategy": config.name,
        "mode": "centralized" if config.centralized else "federated",
        "clients": merged.clients,
        "rows": merged.rows,
    }
    if secure:
        fitted_on["secure_aggregation"] = {
            "protocol": "SecAgg (aureon.secagg): the coordinator holds sums and the agreed category list",
            "threshold": config.secure_threshold or config.clients // 2 + 1,
            "quantization_bits": QUANTIZATION_BITS,
            "max_client_rows": config.secure_max_rows,
        }
    if noise is not None and config.dp_epsilon is not None:
        fitted_on["dp"] = {
            "guarantee": "each client's released statistics, Gaussian mechanism, zCDP accounting",
            "epsilon": privacy.spent_epsilon(multiplier=noise.multiplier, releases=releases, delta=config.dp_delta),
            "delta": config.dp_delta,
            "noise_multiplier": noise.multiplier,
        }
    return FittedPipeline(
        numeric=numeric,
        categorical=categorical,
        impute=impute,
        offset=offset,
        scale=scale,
        generated=generated,
        edges=bin_edges,
        vocabularies=vocabularies,
        categorical_fill=fill,
        fitted_on=fitted_on,
        target=_target_scaling(config, columns, federation, noise) if columns.task == "regression" else None,
    )


def _target_scaling(
    config: TabularFeaturesConfig, columns: Columns, federation: Federation, noise: NoiseSpec | None
) -> tuple[float, float]:
    """A regression target's federated mean and standard deviation (from counts, sums, squares)."""
    target_noise = None
    if noise is not None:
        bound = config.bounds.get(columns.target)
        if bound is None:
            raise ConfigError(
                f"features.bounds must give [low, high] for the regression target {columns.target!r} under "
                f"features.dp_epsilon, got none (e.g. features.bounds={{{columns.target}: [0, 400]}})"
            )
        target_noise = NoiseSpec(
            multiplier=noise.multiplier, low=np.array([float(bound[0])]), high=np.array([float(bound[1])])
        )
    query = StatisticsQuery((TARGET_COLUMN,), (), noise=target_noise, of_target=True)
    bounds = None
    if _secure(config):
        low, high = _bounds(config, (columns.target,), "the regression target")
        bounds = (low, high)
    summary = merge_answers(_statistics(config, federation, query, bounds)).summary
    if summary is None or summary.count[0] <= 1:
        raise DataError(f"the regression target {columns.target!r} has too few values across the clients to scale")
    std = float(np.sqrt(summary.variance[0]))
    return float(summary.mean[0]), std if std > 0 else 1.0


def _impute_values(
    config: TabularFeaturesConfig, mean: np.ndarray, hist: np.ndarray | None, edges: np.ndarray | None, width: int
) -> np.ndarray:
    if config.impute == "mean" or width == 0:
        return np.asarray(mean, dtype=np.float64)
    if hist is None or edges is None:
        raise DataError(f"features.impute={config.impute!r} needs histograms, and none were answered")
    if config.impute == "median":
        return quantiles(hist, edges, [0.5])[:, 0]
    fullest = np.argmax(hist, axis=1)  # most_frequent: the middle of the fullest bin
    rows = np.arange(len(fullest))
    return (edges[rows, fullest] + edges[rows, fullest + 1]) / 2.0


def _scaling(
    kind: str, mean: np.ndarray, variance: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    width = len(mean)
    if kind == "standard":
        std = np.sqrt(variance)
        return np.asarray(mean, dtype=np.float64), np.where(std > 0, std, 1.0)
    if kind == "minmax":
        span = np.asarray(high, dtype=np.float64) - low
        return np.asarray(low, dtype=np.float64), np.where(span > 0, span, 1.0)
    return np.zeros(width), np.ones(width)


def _weighted_scores(answers: list[Any]) -> np.ndarray:
    rows = np.array([a.rows for a in answers], dtype=np.float64)
    return np.sum([a.scores * r for a, r in zip(answers, rows, strict=True)], axis=0) / max(rows.sum(), 1.0)


def _generate(
    config: TabularFeaturesConfig, columns: Columns, federation: Federation, impute: np.ndarray, *, seed: int
) -> tuple[tuple[tuple[str, int, int], ...], np.ndarray, np.ndarray]:
    """Two scoring rounds: the base columns alone, then candidates over the best of them."""
    base = tuple(("square", j, -1) for j in range(len(columns.numeric)))
    rows_cap = config.scoring_rows()
    request = ScoreRequest(columns.numeric, columns.categorical, impute, base, columns.task, seed, rows_cap)
    alone = _weighted_scores(federation.scores(request))
    pair_columns = getattr(config, "pair_columns", 8)
    best = sorted(np.argsort(-alone, kind="stable")[:pair_columns].tolist())
    pool = tuple(candidates(best))
    request = ScoreRequest(columns.numeric, columns.categorical, impute, pool, columns.task, seed, rows_cap)
    answers = federation.scores(request)
    scores = _weighted_scores(answers)
    keep = np.sort(np.argsort(-scores, kind="stable")[: config.generated_features()])
    summary = merge_summaries([a.summary for a in answers])
    offset, scale = _scaling(config.scaling(), summary.mean, summary.variance, summary.minimum, summary.maximum)
    if config.scaling() == "none":
        offset, scale = np.zeros(len(pool)), np.ones(len(pool))
    return tuple(pool[i] for i in keep), offset[keep], scale[keep]
