"""Statistics answers summed under secure aggregation: the coordinator holds sums, never one client's answer.

With ``features.secure_aggregation`` each client's answer to a statistics
query becomes one fixed-length real vector (row count; per numeric column
counts, missing counts, sums, sums of squares; histogram bins; per
categorical column its counts over an agreed category list and a 0/1
"I hold it" indicator per category). Values are clipped into
``features.bounds`` first, so every coordinate has a public bound (counts
by ``features.secure_max_rows``, sums by bound x rows), which scales it into
the protocol's clipping range (aureon.features.tabular.secure_sum).
Min/max cannot be summed: they are the declared bounds, as under DP.

Agreeing on the category list (``secure_statistics``), in three exchanges:

1. buckets (secure): per categorical column, each category is hashed into
   ``BUCKETS`` buckets; clients sum per bucket their row count and a 0/1
   holder indicator.
2. names (in the clear): for the buckets whose summed holders reach
   ``min_clients`` and summed count ``min_count``, each client sends the names
   of its categories hashed there.
3. values (secure): the statistics vector over the union of those names,
   whose summed holder indicators enforce "held by at least ``min_clients``
   clients" per name exactly (a bucket can pass by a collision; its names
   are then checked here one by one).

What leaks beyond the sums: the per-bucket sums of step 1 (anyone can hash a
guessed name to test it), and in step 2 which client holds which name of a
passing bucket (a rare name that collides with a common one included); the
coordinator does not learn the names of categories held by fewer than
``min_clients`` clients unless such a collision happens. The DP path sends
every name in the clear, so this is no more than it did.

Under ``features.dp_epsilon`` each client noises its vector before masking
(distributed noise, the same Gaussian releases as the plain DP path; counts
and holder indicators of one round form one joint release); the public
scale then also covers ``HEADROOM`` standard deviations of that noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

import numpy as np

from aureon.data.tables import Table
from aureon.exceptions import DataError
from aureon.features.tabular import privacy
from aureon.features.tabular.categories import CategoryCounts, category_counts
from aureon.features.tabular.histogram import histograms
from aureon.features.tabular.secure_sum import (
    Observer,
    Party,
    VectorSource,
    run_in_process,
    settings,
    unit_error_bound,
)
from aureon.features.tabular.statistics import StatisticsAnswer, StatisticsQuery, check_columns, target_table
from aureon.features.tabular.summary import NumericSummary, summarize
from aureon.secagg import ImplausibleAggregate, SecAggClient, SecureSum

BUCKETS: Final = 4096  # per categorical column, in the bucket round
HEADROOM: Final = 8.0  # noise standard deviations a coordinate's scale allows beyond its bound

Wanted = dict[str, list[int]]  # column -> buckets whose names are asked for
Names = dict[str, list[str]]  # column -> a client's category names in the wanted buckets


def bucket_of(column: str, category: str) -> int:
    """The public bucket of ``category`` in ``column`` (the same on every client)."""
    digest = hashlib.sha256(f"{column}\0{category}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class Segment:
    """A run of coordinates sharing a public bound, a noise group and whether they are counts."""

    name: str
    bound: np.ndarray  # per coordinate, the largest |value| one honest client holds (before noise)
    group: str  # the release it is noised in (one Gaussian vector per group)
    count: bool  # an integer count without noise (exact after rounding)


@dataclass(frozen=True)
class SecureQuery:
    """A statistics query to be summed securely: the bucket round (``categories`` None) or the values round."""

    query: StatisticsQuery
    low: np.ndarray  # the numeric columns' declared bounds (features.bounds)
    high: np.ndarray
    max_rows: int
    threshold: int = 0  # the protocol's; 0: a strict majority
    categories: dict[str, tuple[str, ...]] | None = None

    def segments(self) -> list[Segment]:
        rows = float(self.max_rows)
        width = len(self.query.categorical)
        if self.categories is None:
            parts = []
            for column in self.query.categorical:
                parts.append(Segment(f"buckets:{column}", np.full(BUCKETS, rows), "categories", True))
                parts.append(Segment(f"holders:{column}", np.ones(BUCKETS), "categories", True))
            return parts
        k = len(self.query.numeric)
        parts = [Segment("rows", np.array([rows]), "rows", True)]
        if self.query.summary and k:
            top = np.maximum(np.abs(self.low), np.abs(self.high))
            parts += [
                Segment("count", np.full(k, rows), "counts", True),
                Segment("missing", np.full(k, rows), "counts", True),
                Segment("sum", rows * top, "sum", False),
                Segment("sum_squares", rows * top * top, "sum_squares", False),
            ]
        if self.query.edges is not None and k:
            parts.append(Segment("histograms", np.full(self.query.edges.size - k, rows), "histograms", True))
        if self.query.summary and width:
            for column in self.query.categorical:
                known = len(self.categories.get(column, ()))
                parts.append(Segment(f"counts:{column}", np.full(known, rows), "categories", True))
                parts.append(Segment(f"held:{column}", np.ones(known), "categories", True))
        return parts

    def scale(self) -> np.ndarray:
        """Each coordinate's public scale: its bound plus room for the noise."""
        parts = self.segments()
        if not parts:
            return np.zeros(0)
        sigma = self._noise_std()
        return np.concatenate([s.bound + HEADROOM * sigma.get(s.group, 0.0) for s in parts])

    def _noise_std(self) -> dict[str, float]:
        noise = self.query.noise
        if noise is None:
            return {}
        z, k = noise.multiplier, len(self.query.numeric)
        return {
            "rows": z,
            "counts": z * float(np.sqrt(k)),
            "sum": z * privacy.sum_sensitivity(noise.low, noise.high),
            "sum_squares": z * privacy.square_sensitivity(noise.low, noise.high),
            "histograms": z * float(np.sqrt(k)),
            "categories": z * float(np.sqrt(2 * len(self.query.categorical))),
        }


# ---------------------------------------------------------------- client side
def client_vector(table: Table, request: SecureQuery, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """This client's answer as one vector in [-1, 1] (values clipped, noised under DP, divided by the scale)."""
    query = request.query
    if query.of_target:
        table = target_table(table)
    check_columns(table, query)
    if len(table) > request.max_rows:
        raise DataError(
            f"this client holds {len(table)} rows, more than features.secure_max_rows={request.max_rows}; "
            "raise it on every party (it bounds each client's counts for secure aggregation)"
        )
    raw = _raw(table, request)
    noise = query.noise
    if noise is not None:
        raw = _noised(raw, request, rng or privacy.local_generator())
    scale = request.scale()
    return np.clip(raw / np.where(scale > 0, scale, 1.0), -1.0, 1.0)


def _raw(table: Table, request: SecureQuery) -> np.ndarray:
    query = request.query
    cats = category_counts(table.features, query.categorical) if query.summary else {}
    if request.categories is None:
        parts = []
        for column in query.categorical:
            counts = np.zeros(BUCKETS)
            for category, count in cats[column].items():
                counts[bucket_of(column, category)] += count
            parts += [counts, (counts > 0).astype(np.float64)]
        return np.concatenate(parts) if parts else np.zeros(0)
    values = table.features[list(query.numeric)].to_numpy(dtype=np.float64)
    values = np.clip(values, request.low, request.high)  # NaN stays NaN
    parts = [np.array([float(len(table))])]
    if query.summary and query.numeric:
        s = summarize(values)
        parts += [s.count, s.missing, s.sum, s.sum_squares]
    if query.edges is not None and query.numeric:
        parts.append(histograms(values, query.edges).ravel())
    if query.summary:
        for column in query.categorical:
            held = cats[column]
            counts = np.array([held.get(name, 0.0) for name in request.categories.get(column, ())])
            parts += [counts, (counts > 0).astype(np.float64)]
    return np.concatenate(parts)


def _noised(raw: np.ndarray, request: SecureQuery, rng: np.random.Generator) -> np.ndarray:
    sigma = request._noise_std()
    out = raw.astype(np.float64).copy()
    start = 0
    for segment in request.segments():
        end = start + segment.bound.size
        out[start:end] += rng.normal(0.0, sigma[segment.group], size=end - start)
        start = end
    return out


def names_in_buckets(table: Table, query: StatisticsQuery, wanted: Mapping[str, Sequence[int]]) -> Names:
    """This client's category names that hash into the wanted buckets (the names exchange, in the clear)."""
    check_columns(table, query)
    unknown = sorted(set(wanted) - set(query.categorical))
    if unknown:
        raise DataError(f"names asked for columns {unknown}, which are not the query's categorical columns")
    cats = category_counts(table.features, list(wanted))
    out: Names = {}
    for column, buckets in wanted.items():
        chosen = set(int(b) for b in buckets)
        out[column] = sorted(c for c, n in cats[column].items() if n > 0 and bucket_of(column, c) in chosen)
    return out


# ---------------------------------------------------------------- server side
def sums(request: SecureQuery, result: SecureSum) -> tuple[np.ndarray, float]:
    """The summed vector in its own units, the contributors' count checked, and the per-unit error bound."""
    total = np.asarray(result.weighted_sum, dtype=np.float64) * request.scale()
    if result.total_weight != len(result.contributors):
        raise ImplausibleAggregate(
            f"the securely summed weight is {result.total_weight}, but {len(result.contributors)} clients "
            "contributed at weight 1 each"
        )
    return total, unit_error_bound(len(result.contributors))


def _split(request: SecureQuery, total: np.ndarray, error: float, contributors: int) -> dict[str, np.ndarray]:
    """The summed vector cut into its segments; noiseless counts rounded once checked plausible."""
    scale = request.scale()
    out: dict[str, np.ndarray] = {}
    start = 0
    for segment in request.segments():
        end = start + segment.bound.size
        part = total[start:end]
        if segment.count and request.query.noise is None:
            part = _exact_counts(segment, part, scale[start:end] * error, contributors)
        out[segment.name] = part
        start = end
    return out


def _exact_counts(segment: Segment, part: np.ndarray, error: np.ndarray, contributors: int) -> np.ndarray:
    """Honest counts sum to integers in [0, contributors x bound]: anything else is a tampered input."""
    rounded = np.rint(part)
    off = np.abs(part - rounded) > error
    outside = (rounded < 0) | (rounded > contributors * segment.bound)
    if off.any() or outside.any():
        raise ImplausibleAggregate(
            f"the securely summed {segment.name!r} is not a sum of {contributors} honest counts "
            f"(a value off an integer by more than the quantization bound, or outside [0, {contributors} x bound])"
        )
    return rounded


def buckets_passing(request: SecureQuery, result: SecureSum, *, min_count: float, min_clients: int) -> Wanted:
    """Per column, the buckets whose summed count and holders pass the vocabulary's thresholds."""
    total, error = sums(request, result)
    parts = _split(request, total, error, len(result.contributors))
    return {
        column: np.flatnonzero(
            (parts[f"buckets:{column}"] >= min_count) & (parts[f"holders:{column}"] >= min_clients)
        ).tolist()
        for column in request.query.categorical
    }


def answer_from_sum(request: SecureQuery, result: SecureSum) -> StatisticsAnswer:
    """The summed answer, as ``merge_answers`` would give it, with the per-category holder counts."""
    query, agreed = request.query, request.categories or {}
    total, error = sums(request, result)
    contributors = len(result.contributors)
    parts = _split(request, total, error, contributors)
    summary = None
    if query.summary:
        summary = NumericSummary(
            count=parts.get("count", np.zeros(0)),
            missing=parts.get("missing", np.zeros(0)),
            sum=parts.get("sum", np.zeros(0)),
            sum_squares=parts.get("sum_squares", np.zeros(0)),
            minimum=np.asarray(request.low, dtype=np.float64),
            maximum=np.asarray(request.high, dtype=np.float64),
        )
    hist = None
    if "histograms" in parts and query.edges is not None:
        hist = parts["histograms"].reshape(len(query.numeric), query.edges.shape[1] - 1)
    categories: CategoryCounts = {}
    holders: CategoryCounts = {}
    if query.summary:
        for column in query.categorical:
            names = agreed.get(column, ())
            categories[column] = dict(zip(names, parts[f"counts:{column}"].tolist(), strict=True))
            holders[column] = dict(zip(names, parts[f"held:{column}"].tolist(), strict=True))
    return StatisticsAnswer(
        numeric=query.numeric,
        categorical=query.categorical,
        rows=float(parts["rows"][0]),
        summary=summary,
        histograms=hist,
        categories=categories,
        clients=contributors,
        holders=holders,
    )


def error_bounds(request: SecureQuery, contributors: int) -> dict[str, np.ndarray]:
    """Per segment and coordinate, the bound on |secure sum - sum of the clipped (noised) answers|."""
    scale, unit = request.scale(), unit_error_bound(contributors)
    out, start = {}, 0
    for segment in request.segments():
        end = start + segment.bound.size
        out[segment.name] = scale[start:end] * unit
        start = end
    return out


class SecureFederation(Protocol):
    def secure_sum(self, request: SecureQuery) -> SecureSum: ...

    def category_names(self, query: StatisticsQuery, wanted: Wanted) -> list[Names]: ...


def secure_statistics(
    federation: SecureFederation,
    query: StatisticsQuery,
    *,
    low: np.ndarray,
    high: np.ndarray,
    max_rows: int,
    threshold: int,
    min_count: float,
    min_clients: int,
) -> StatisticsAnswer:
    """The clients' summed answer to ``query``, the category list agreed first (module docstring)."""
    base = SecureQuery(query, low=low, high=high, max_rows=max_rows, threshold=threshold)
    agreed: dict[str, tuple[str, ...]] = {column: () for column in query.categorical}
    if query.summary and query.categorical:
        buckets = replace(base, categories=None)
        wanted = buckets_passing(buckets, federation.secure_sum(buckets), min_count=min_count, min_clients=min_clients)
        if any(wanted.values()):
            for names in federation.category_names(query, wanted):
                for column, held in names.items():
                    if column not in agreed:
                        raise DataError(f"a client sent category names for column {column!r}, which was not asked")
                    agreed[column] = tuple(sorted(set(agreed[column]) | set(held)))
    values = replace(base, categories=agreed)
    return answer_from_sum(values, federation.secure_sum(values))


# ---------------------------------------------------------------- simulation
@dataclass
class InProcessSecureSum:
    """The protocol run among tables of this process, each with its own client state machine.

    ``drop`` and ``observe`` are as in ``run_in_process``: a client going
    offline, and what the server receives from each client.
    """

    rng: np.random.Generator | None = None
    drop: dict[int, str] = field(default_factory=dict)
    observe: Observer | None = None
    clients: list[SecAggClient] = field(default_factory=list)
    server_round: int = 0

    def run(self, tables: Sequence[Table], request: SecureQuery) -> SecureSum:
        if len(self.clients) != len(tables):
            self.clients = [SecAggClient() for _ in tables]
        self.server_round += 1
        parties = [
            Party(client=client, vector=_vector_of(table, request, self.rng))
            for client, table in zip(self.clients, tables, strict=True)
        ]
        return run_in_process(
            parties,
            secagg=settings(threshold=request.threshold),
            server_round=self.server_round,
            vector_length=int(request.scale().size),
            drop=self.drop,
            observe=self.observe,
        )


def _vector_of(table: Table, request: SecureQuery, rng: np.random.Generator | None) -> VectorSource:
    return lambda: client_vector(table, request, rng=rng)
