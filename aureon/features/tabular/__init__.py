"""Tabular feature engineering from federated statistics: clients send aggregates, never rows."""

from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.statistics import StatisticsAnswer, StatisticsQuery, answer_query, merge_answers

__all__ = [
    "Columns",
    "FittedPipeline",
    "StatisticsAnswer",
    "StatisticsQuery",
    "answer_query",
    "fit_pipeline",
    "merge_answers",
]
