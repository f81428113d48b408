"""One client's answer to a statistics query, and the merge of every client's answer.

The federated-analytics pattern: the server sends a ``StatisticsQuery`` (which
columns, the histogram edges, whether and how to noise), each client answers
with aggregates of its own rows (``answer_query``), never the rows, and the
server sums the answers (``merge_answers``). A client whose columns differ
from the query's is refused, naming the columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from aureon.data.tables import Table
from aureon.exceptions import DataError
from aureon.features.tabular import privacy
from aureon.features.tabular.categories import CategoryCounts, category_counts, merge_category_counts
from aureon.features.tabular.histogram import histograms, merge_histograms
from aureon.features.tabular.summary import NumericSummary, merge_summaries, summarize


@dataclass(frozen=True)
class NoiseSpec:
    """Gaussian DP on a release: the multiplier and each numeric column's declared [low, high]."""

    multiplier: float
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class StatisticsQuery:
    """What the server asks: moments and category counts, and/or histograms on ``edges``."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    summary: bool = True
    edges: np.ndarray | None = None  # (numeric columns, bins + 1)
    noise: NoiseSpec | None = None
    of_target: bool = False  # about the regression target (``TARGET_COLUMN``), not the feature columns

    def releases(self) -> int:
        """How many Gaussian vectors an answer releases (what its epsilon is charged for)."""
        count = 0
        if self.summary:
            count += 3 * bool(self.numeric) + bool(self.categorical)  # counts+missing, sums, squares; categories
        if self.edges is not None and self.numeric:
            count += 1
        return count


@dataclass(frozen=True)
class StatisticsAnswer:
    """A client's aggregates (or their sum over clients): never a row."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    rows: float
    summary: NumericSummary | None = None
    histograms: np.ndarray | None = None
    categories: CategoryCounts = field(default_factory=dict)
    clients: int = 1
    holders: CategoryCounts | None = None  # per category, how many clients hold it (a secure sum's)


def check_columns(table: Table, query: StatisticsQuery, *, who: str = "this client") -> None:
    """The client's columns and their kinds must be the query's, or the sums would mix columns."""
    if table.numeric == query.numeric and table.categorical == query.categorical:
        return
    expected, held = set(query.numeric + query.categorical), set(table.columns)
    details = []
    if expected - held:
        details.append(f"lacks {sorted(expected - held)}")
    if held - expected:
        details.append(f"has {sorted(held - expected)} that the others do not")
    moved = sorted(c for c in set(query.numeric) & set(table.categorical)) + sorted(
        c for c in set(query.categorical) & set(table.numeric)
    )
    if moved:
        details.append(f"types {moved} differently")
    if not details:
        details.append(f"orders them {list(table.columns)}")
    raise DataError(
        f"{who}'s columns differ from the federation's: it {'; '.join(details)} "
        f"(expected numeric {list(query.numeric)}, categorical {list(query.categorical)})"
    )


TARGET_COLUMN = "<target>"  # the one numeric column of a query about the target


def target_table(table: Table) -> Table:
    """``table``'s regression target as a one-column numeric table (what a target query reads)."""
    if table.task != "regression":
        raise DataError(f"table {table.name!r} has a {table.task} target; only a regression target is summed")
    values = pd.DataFrame({TARGET_COLUMN: table.target.to_numpy(dtype=np.float64)})
    return Table(
        name=table.name,
        features=values,
        target=table.target,
        task=table.task,
        numeric=(TARGET_COLUMN,),
        categorical=(),
    )


def answer_query(table: Table, query: StatisticsQuery, *, rng: np.random.Generator | None = None) -> StatisticsAnswer:
    """This client's aggregates for ``query``; under ``query.noise``, values clipped and noised."""
    if query.of_target:
        table = target_table(table)
    check_columns(table, query)
    values = table.features[list(query.numeric)].to_numpy(dtype=np.float64)
    noise = query.noise
    if noise is not None:
        values = np.clip(values, noise.low, noise.high)  # NaN stays NaN
    summary = summarize(values) if query.summary else None
    hist = histograms(values, query.edges) if query.edges is not None else None
    cats = category_counts(table.features, query.categorical) if query.summary else {}
    answer = StatisticsAnswer(
        numeric=query.numeric,
        categorical=query.categorical,
        rows=float(len(table)),
        summary=summary,
        histograms=hist,
        categories=cats,
    )
    return answer if noise is None else _noised(answer, noise, rng or privacy.local_generator())


def _noised(answer: StatisticsAnswer, noise: NoiseSpec, rng: np.random.Generator) -> StatisticsAnswer:
    """Every released figure noised; min/max replaced by the declared bounds (they would leak a row)."""
    z, columns = noise.multiplier, len(answer.numeric)
    summary = answer.summary
    if summary is not None:
        joint = privacy.add_noise(
            np.concatenate([summary.count, summary.missing]), sensitivity=np.sqrt(columns), multiplier=z, rng=rng
        )
        summary = NumericSummary(
            count=joint[:columns],
            missing=joint[columns:],
            sum=privacy.add_noise(
                summary.sum, sensitivity=privacy.sum_sensitivity(noise.low, noise.high), multiplier=z, rng=rng
            ),
            sum_squares=privacy.add_noise(
                summary.sum_squares,
                sensitivity=privacy.square_sensitivity(noise.low, noise.high),
                multiplier=z,
                rng=rng,
            ),
            minimum=np.asarray(noise.low, dtype=np.float64),
            maximum=np.asarray(noise.high, dtype=np.float64),
        )
    hist = answer.histograms
    if hist is not None:
        hist = privacy.add_noise(hist, sensitivity=np.sqrt(columns), multiplier=z, rng=rng)
    cats: CategoryCounts = {}
    if answer.categories:
        sensitivity = np.sqrt(len(answer.categorical))
        for column, counts in answer.categories.items():
            noisy = privacy.add_noise(np.array(list(counts.values())), sensitivity=sensitivity, multiplier=z, rng=rng)
            cats[column] = dict(zip(counts, noisy.tolist(), strict=True))
    rows = float(privacy.add_noise(np.array([answer.rows]), sensitivity=1.0, multiplier=z, rng=rng)[0])
    return replace(answer, summary=summary, histograms=hist, categories=cats, rows=rows)


def merge_answers(answers: Sequence[StatisticsAnswer]) -> StatisticsAnswer:
    """The sum of the clients' answers: what the same query gives on their pooled rows."""
    if not answers:
        raise DataError("no client answered the statistics query")
    first = answers[0]
    for position, answer in enumerate(answers[1:], start=1):
        if (answer.numeric, answer.categorical) != (first.numeric, first.categorical):
            raise DataError(
                f"answer {position} is over columns {list(answer.numeric + answer.categorical)}, "
                f"answer 0 over {list(first.numeric + first.categorical)}"
            )
    summaries = [a.summary for a in answers if a.summary is not None]
    hists = [a.histograms for a in answers if a.histograms is not None]
    totals, _ = merge_category_counts([a.categories for a in answers])
    return StatisticsAnswer(
        numeric=first.numeric,
        categorical=first.categorical,
        rows=float(sum(a.rows for a in answers)),
        summary=merge_summaries(summaries) if len(summaries) == len(answers) else None,
        histograms=merge_histograms(hists) if len(hists) == len(answers) else None,
        categories=totals,
        clients=sum(a.clients for a in answers),
    )


def category_holders(answers: Sequence[StatisticsAnswer]) -> CategoryCounts:
    """Per column and category, how many clients hold it (from the answers, before they are summed).

    A securely summed answer carries its summed holder indicators instead.
    """
    if answers and all(a.holders is not None for a in answers):
        return merge_category_counts([a.holders or {} for a in answers])[0]
    return merge_category_counts([a.categories for a in answers])[1]
