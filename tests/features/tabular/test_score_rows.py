"""features.score_rows: a client scores candidates on at most that many of its rows, drawn by itself,
stratified so a rare class keeps its rows; below the cap nothing changes; the selection still finds
an informative generated feature with the cap on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from aureon.config.features import GenerateFeaturesConfig
from aureon.data.tables import Table, table_from_frame
from aureon.exceptions import ConfigError
from aureon.features.tabular import federation
from aureon.features.tabular.federation import LocalFederation, ScoreRequest, answer_scores
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.generation import candidates, class_allocation, scoring_rows
from aureon.features.tabular.messages import scores_content, scores_request_from


def _numeric_table(rows: int, *, seed: int, target: str) -> Table:
    """Five standard-normal columns; the target depends on x1 * x2 only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 5))
    product = x[:, 0] * x[:, 1]
    if target == "regression":
        y = product + 0.1 * rng.standard_normal(rows)
    else:  # about 3% positives
        y = (product > np.quantile(product, 0.97)).astype(int)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(1, 6)]).assign(y=y)
    return table_from_frame(frame, name="product", target="y")


def _clients(table: Table, n: int) -> list[Table]:
    return [table.take(rows) for rows in np.array_split(np.arange(len(table)), n)]


def _request(table: Table, *, max_rows: int | None) -> ScoreRequest:
    width = len(table.numeric)
    return ScoreRequest(
        table.numeric, (), np.zeros(width), tuple(candidates(range(width))), table.task, 0, max_rows=max_rows
    )


class _Spy:
    """Stands in for the mutual-information estimate and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, values: np.ndarray, target: np.ndarray, *, task: str, seed: int) -> np.ndarray:
        self.calls.append((values.copy(), target.copy()))
        return np.zeros(values.shape[1])


def test_a_stratified_draw_keeps_every_row_of_a_rare_class_and_stays_within_the_cap() -> None:
    target = np.zeros(20_000, dtype=np.int64)
    target[np.random.default_rng(1).choice(20_000, size=34, replace=False)] = 1  # 0.17% positives
    rows = scoring_rows(target, cap=5000, classification=True, rng=np.random.default_rng(2))
    assert len(rows) == 5000 and len(np.unique(rows)) == 5000 and np.all(np.diff(rows) > 0)
    assert target[rows].sum() == 34  # a uniform draw would keep about 8
    assert list(class_allocation(np.array([9000, 900, 100]), 1000)) == [770, 146, 84]  # floors of 83, then shares
    assert len(scoring_rows(np.arange(300.0), cap=100, classification=False, rng=np.random.default_rng(0))) == 100
    under = scoring_rows(target[:50], cap=100, classification=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(under, np.arange(50))


def test_a_client_with_more_rows_scores_at_most_the_cap_and_its_moments_cover_every_row(monkeypatch) -> None:
    table = _numeric_table(3000, seed=0, target="classification")
    spy = _Spy()
    monkeypatch.setattr(federation, "mutual_information", spy)
    answer = answer_scores(table, _request(table, max_rows=1000))
    values, target = spy.calls[0]
    assert values.shape[0] == 1000
    assert target.sum() == int(table.target.sum()) == 90  # 3% positives, under the floor of 1000 / 8: all kept
    assert answer.rows == 3000 and np.all(answer.summary.count == 3000)


def test_the_scored_rows_are_the_clients_own_draw_not_the_servers_seed(monkeypatch) -> None:
    table = _numeric_table(3000, seed=0, target="regression")
    spy = _Spy()
    monkeypatch.setattr(federation, "mutual_information", spy)
    request = _request(table, max_rows=500)  # the same request, the same seed, twice
    answer_scores(table, request)
    answer_scores(table, request)
    assert not np.array_equal(spy.calls[0][1], spy.calls[1][1])


def test_a_client_under_the_cap_scores_exactly_as_without_one() -> None:
    table = _numeric_table(400, seed=3, target="classification")
    capped = answer_scores(table, _request(table, max_rows=400))
    uncapped = answer_scores(table, _request(table, max_rows=None))
    np.testing.assert_array_equal(capped.scores, uncapped.scores)
    clients = _clients(table, 4)
    columns = Columns(table.numeric, (), table.task)
    config = GenerateFeaturesConfig(max_features=4, min_clients=1, clients=4)
    with_cap = fit_pipeline(config, columns, LocalFederation(clients), seed=0)
    without = fit_pipeline(replace(config, score_rows=None), columns, LocalFederation(clients), seed=0)
    assert with_cap.generated == without.generated
    np.testing.assert_array_equal(with_cap.offset, without.offset)
    np.testing.assert_array_equal(with_cap.scale, without.scale)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_the_selection_still_picks_the_informative_product_with_the_cap_on(task: str) -> None:
    table = _numeric_table(12_000, seed=4, target=task)
    config = GenerateFeaturesConfig(max_features=2, min_clients=1, clients=4, score_rows=800)
    columns = Columns(table.numeric, (), table.task)
    pipeline = fit_pipeline(config, columns, LocalFederation(_clients(table, 4), rng=np.random.default_rng(5)), seed=0)
    assert ("product", 0, 1) in pipeline.generated


def test_the_score_rows_cap_travels_in_the_score_request_message() -> None:
    table = _numeric_table(50, seed=0, target="regression")
    for cap in (5000, None):
        assert scores_request_from(scores_content(_request(table, max_rows=cap))).max_rows == cap


def test_a_bad_score_rows_is_refused_naming_the_field_and_the_centralized_fit_scales_it() -> None:
    with pytest.raises(ConfigError, match=r"^features.score_rows must be an integer >= 100, .*got 10 "):
        GenerateFeaturesConfig(score_rows=10).validate()
    GenerateFeaturesConfig(score_rows=None).validate()
    assert GenerateFeaturesConfig(score_rows=1000, clients=5).scoring_rows() == 1000
    assert GenerateFeaturesConfig(score_rows=1000, clients=5, centralized=True).scoring_rows() == 5000
