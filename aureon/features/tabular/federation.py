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
from aureon.features.tabular.generation import Candidate, compute, mutual_information
from aureon.features.tabular.statistics import StatisticsAnswer, StatisticsQuery, answer_query, check_columns
from aureon.features.tabular.summary import NumericSummary, summarize


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``candidates`` (computed from numeric values imputed with ``impute``) against the target."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    impute: np.ndarray
    candidates: tuple[Candidate, ...]
    task: str
    seed: int


@dataclass(frozen=True)
class ScoreAnswer:
    """A client's mutual information per candidate, its row count, and the candidates' moments."""

    scores: np.ndarray
    rows: float
    summary: NumericSummary


class Federation(Protocol):
    def statistics(self, query: StatisticsQuery) -> list[StatisticsAnswer]: ...

    def scores(self, request: ScoreRequest) -> list[ScoreAnswer]: ...


def answer_scores(table: Table, request: ScoreRequest) -> ScoreAnswer:
    """One client's scores of the candidates on its own rows."""
    check_columns(table, StatisticsQuery(numeric=request.numeric, categorical=request.categorical))
    values = table.features[list(request.numeric)].to_numpy(dtype=np.float64)
    values = np.where(np.isnan(values), request.impute[None, :], values)
    made = compute(values, request.candidates)
    target = table.target.to_numpy()
    if request.task == "classification":
        target = np.unique(target.astype(str), return_inverse=True)[1]
    scores = mutual_information(made, target, task=request.task, seed=request.seed)
    return ScoreAnswer(scores=scores, rows=float(len(table)), summary=summarize(made))


class LocalFederation:
    """Answers from tables held in this process, one per client."""

    def __init__(self, tables: Sequence[Table], *, rng: np.random.Generator | None = None) -> None:
        self.tables = list(tables)
        self.rng = rng

    def statistics(self, query: StatisticsQuery) -> list[StatisticsAnswer]:
        return [answer_query(table, query, rng=self.rng) for table in self.tables]

    def scores(self, request: ScoreRequest) -> list[ScoreAnswer]:
        return [answer_scores(table, request) for table in self.tables]
