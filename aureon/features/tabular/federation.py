"""Who answers the fit's questions: tables in this process, or clients over Flower's Message API.

``fit_pipeline`` only asks questions (statistics queries, candidate scores);
``LocalFederation`` answers them from tables in this process (a simulation's
partitions, or one pooled table for the centralized comparison) with the same
functions a client runs in its ClientApp handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from aureon.data.tables import Table
from aureon.features.tabular import privacy
from aureon.features.tabular.generation import Candidate, compute, mutual_information, scoring_rows
from aureon.features.tabular.secure_statistics import InProcessSecureSum, Names, SecureQuery, Wanted, names_in_buckets
from aureon.features.tabular.statistics import StatisticsAnswer, StatisticsQuery, answer_query, check_columns
from aureon.features.tabular.summary import NumericSummary, summarize
from aureon.secagg import SecureSum


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``candidates`` (computed from numeric values imputed with ``impute``) against the target.

    ``max_rows``: each client scores on at most this many of its rows (None: all of them).
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    impute: np.ndarray
    candidates: tuple[Candidate, ...]
    task: str
    seed: int
    max_rows: int | None = None


@dataclass(frozen=True)
class ScoreAnswer:
    """A client's mutual information per candidate, its row count, and the candidates' moments."""

    scores: np.ndarray
    rows: float
    summary: NumericSummary


class Federation(Protocol):
    def statistics(self, query: StatisticsQuery) -> list[StatisticsAnswer]: ...

    def scores(self, request: ScoreRequest) -> list[ScoreAnswer]: ...

    def secure_sum(self, request: SecureQuery) -> SecureSum: ...

    def category_names(self, query: StatisticsQuery, wanted: Wanted) -> list[Names]: ...


def answer_scores(table: Table, request: ScoreRequest, *, rng: np.random.Generator | None = None) -> ScoreAnswer:
    """One client's scores of the candidates on (at most ``request.max_rows`` of) its own rows.

    The moments of the candidates cover every row (the generated columns' scaling stays exact);
    which rows are scored is drawn from ``rng``, by default this client's own entropy: the
    coordinator does not get to choose, or know, which of a client's rows its scores rest on.
    """
    check_columns(table, StatisticsQuery(numeric=request.numeric, categorical=request.categorical))
    values = table.features[list(request.numeric)].to_numpy(dtype=np.float64)
    values = np.where(np.isnan(values), request.impute[None, :], values)
    made = compute(values, request.candidates)
    target = table.target.to_numpy()
    classification = request.task == "classification"
    if classification:
        target = np.unique(target.astype(str), return_inverse=True)[1]
    summary = summarize(made)
    if request.max_rows is not None and len(target) > request.max_rows:
        own = rng if rng is not None else privacy.local_generator()
        rows = scoring_rows(target, cap=request.max_rows, classification=classification, rng=own)
        made, target = made[rows], target[rows]
    scores = mutual_information(made, target, task=request.task, seed=request.seed)
    return ScoreAnswer(scores=scores, rows=float(len(table)), summary=summary)


class LocalFederation:
    """Answers from tables held in this process, one per client.

    Secure sums run the real protocol among them in process (``secure``).
    """

    def __init__(self, tables: Sequence[Table], *, rng: np.random.Generator | None = None) -> None:
        self.tables = list(tables)
        self.rng = rng
        self.secure = InProcessSecureSum(rng=rng)

    def statistics(self, query: StatisticsQuery) -> list[StatisticsAnswer]:
        return [answer_query(table, query, rng=self.rng) for table in self.tables]

    def scores(self, request: ScoreRequest) -> list[ScoreAnswer]:
        return [answer_scores(table, request, rng=self.rng) for table in self.tables]

    def secure_sum(self, request: SecureQuery) -> SecureSum:
        return self.secure.run(self.tables, request)

    def category_names(self, query: StatisticsQuery, wanted: Wanted) -> list[Names]:
        return [names_in_buckets(table, query, wanted) for table in self.tables]
