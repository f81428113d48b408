"""Federated statistics over Flower's Message API: the client's query handlers and the server's side.

The server sends ``query.tabular_statistics`` (and ``query.tabular_scores``
for feature selection) to every node; each ClientApp answers from its own
training rows with aggregates only (``answer_query``/``answer_scores``).
``GridFederation`` is the server's ``Federation``: ``fit_pipeline`` over it
gives the pipeline the clients' data implies, without seeing a row. A client
whose floor requires DP refuses a query that carries no noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from aureon import keys
from aureon.config import AureonConfig
from aureon.config.features import TabularFeaturesConfig
from aureon.data.tables import Table
from aureon.exceptions import AureonError, DataError, PrivacyRefused
from aureon.features.tabular.federation import ScoreAnswer, ScoreRequest, answer_scores
from aureon.features.tabular.own_table import own_tables, per_client_tables
from aureon.features.tabular.pipeline_messages import handle_pipeline, handle_schema
from aureon.features.tabular.secure_messages import (
    grid_secure_sum,
    handle_names,
    handle_secure_masked,
    handle_secure_setup,
    handle_secure_share_keys,
    handle_secure_unmask,
    names_content,
    names_from,
)
from aureon.features.tabular.secure_statistics import Names, SecureQuery, Wanted
from aureon.features.tabular.statistics import NoiseSpec, StatisticsAnswer, StatisticsQuery, answer_query
from aureon.features.tabular.summary import NumericSummary
from aureon.federated.refusals import refusal
from aureon.privacy.floor import PrivacyFloor
from aureon.secagg import SecureSum

SUMMARY_FIELDS = ("count", "missing", "sum", "sum_squares", "minimum", "maximum")


def _arrays(**named: np.ndarray | None) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v, dtype=np.float64)) for k, v in named.items() if v is not None})


def _list(config: ConfigRecord, key: str) -> list[Any]:
    value = config[key]
    if not isinstance(value, list):
        raise DataError(f"tabular record entry {key!r} must be a list, got {type(value).__name__}")
    return value


def _array(record: ArrayRecord, key: str) -> np.ndarray | None:
    return record[key].numpy() if key in record else None


# ---------------------------------------------------------------- statistics query
def query_content(query: StatisticsQuery) -> RecordDict:
    config = ConfigRecord(
        {
            "numeric": list(query.numeric),
            "categorical": list(query.categorical),
            "summary": query.summary,
            "noise-multiplier": query.noise.multiplier if query.noise else 0.0,
            "of-target": query.of_target,
        }
    )
    noise = query.noise
    arrays = _arrays(edges=query.edges, low=noise.low if noise else None, high=noise.high if noise else None)
    return RecordDict({keys.TABULAR: config, keys.TABULAR_ARRAYS: arrays})


def query_from(content: RecordDict) -> StatisticsQuery:
    config, arrays = content.config_records[keys.TABULAR], content.array_records[keys.TABULAR_ARRAYS]
    multiplier = float(config["noise-multiplier"])  # type: ignore[arg-type]
    low, high = _array(arrays, "low"), _array(arrays, "high")
    noise = None
    if multiplier > 0:
        if low is None or high is None:
            raise DataError("a noised statistics query must carry the columns' bounds")
        noise = NoiseSpec(multiplier=multiplier, low=low, high=high)
    return StatisticsQuery(
        numeric=tuple(config["numeric"]),  # type: ignore[arg-type]
        categorical=tuple(config["categorical"]),  # type: ignore[arg-type]
        summary=bool(config["summary"]),
        edges=_array(arrays, "edges"),
        noise=noise,
        of_target=bool(config.get("of-target", False)),
    )


def answer_content(answer: StatisticsAnswer) -> RecordDict:
    config: dict[str, list[str] | list[float] | float] = {"rows": answer.rows}
    for column, counts in answer.categories.items():
        config[f"categories:{column}"] = list(counts)
        config[f"counts:{column}"] = [float(v) for v in counts.values()]
    summary = answer.summary
    named = {f: getattr(summary, f) for f in SUMMARY_FIELDS} if summary else {}
    arrays = _arrays(histograms=answer.histograms, **named)
    return RecordDict({keys.TABULAR: ConfigRecord(config), keys.TABULAR_ARRAYS: arrays})  # type: ignore[arg-type]


def answer_from(content: RecordDict, query: StatisticsQuery) -> StatisticsAnswer:
    config, arrays = content.config_records[keys.TABULAR], content.array_records[keys.TABULAR_ARRAYS]
    summary = None
    if "count" in arrays:
        parts = {f: _array(arrays, f) for f in SUMMARY_FIELDS}
        summary = NumericSummary(**parts)  # type: ignore[arg-type]
    categories = {
        column: dict(zip(_list(config, f"categories:{column}"), _list(config, f"counts:{column}"), strict=True))
        for column in query.categorical
        if f"categories:{column}" in config
    }
    return StatisticsAnswer(
        numeric=query.numeric,
        categorical=query.categorical,
        rows=float(config["rows"]),  # type: ignore[arg-type]
        summary=summary,
        histograms=_array(arrays, "histograms"),
        categories=categories,
    )


# ---------------------------------------------------------------- score request
def scores_content(request: ScoreRequest) -> RecordDict:
    config = ConfigRecord(
        {
            "numeric": list(request.numeric),
            "categorical": list(request.categorical),
            "task": request.task,
            "seed": request.seed,
            "max_rows": 0 if request.max_rows is None else request.max_rows,  # 0: every row
            "operations": [c[0] for c in request.candidates],
            "a": [c[1] for c in request.candidates],
            "b": [c[2] for c in request.candidates],
        }
    )
    return RecordDict({keys.TABULAR: config, keys.TABULAR_ARRAYS: _arrays(impute=request.impute)})


def scores_request_from(content: RecordDict) -> ScoreRequest:
    config, arrays = content.config_records[keys.TABULAR], content.array_records[keys.TABULAR_ARRAYS]
    candidates = zip(_list(config, "operations"), _list(config, "a"), _list(config, "b"), strict=True)
    impute = _array(arrays, "impute")
    return ScoreRequest(
        numeric=tuple(config["numeric"]),  # type: ignore[arg-type]
        categorical=tuple(config["categorical"]),  # type: ignore[arg-type]
        impute=impute if impute is not None else np.zeros(0),
        candidates=tuple((str(op), int(a), int(b)) for op, a, b in candidates),
        task=str(config["task"]),
        seed=int(config["seed"]),  # type: ignore[arg-type]
        max_rows=int(config.get("max_rows", 0)) or None,  # type: ignore[arg-type]
    )


def score_answer_content(answer: ScoreAnswer) -> RecordDict:
    named = {f: getattr(answer.summary, f) for f in SUMMARY_FIELDS}
    return RecordDict(
        {
            keys.TABULAR: ConfigRecord({"rows": answer.rows}),
            keys.TABULAR_ARRAYS: _arrays(scores=answer.scores, **named),
        }
    )


def score_answer_from(content: RecordDict) -> ScoreAnswer:
    arrays = content.array_records[keys.TABULAR_ARRAYS]
    parts = {f: _array(arrays, f) for f in SUMMARY_FIELDS}
    scores = _array(arrays, "scores")
    return ScoreAnswer(
        scores=scores if scores is not None else np.zeros(0),
        rows=float(content.config_records[keys.TABULAR]["rows"]),  # type: ignore[arg-type]
        summary=NumericSummary(**parts),  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- client side
TableSource = Callable[[Context], Table]


def handle_statistics(msg: Message, context: Context, table: Table) -> Message:
    """Answer a statistics query from ``table`` (this client's training rows)."""
    try:
        query = query_from(msg.content)
        if query.noise is None and PrivacyFloor.from_node_config(context.node_config).require_dp:
            raise PrivacyRefused("this client requires DP and answers only noised statistics (features.dp_epsilon)")
        return Message(answer_content(answer_query(table, query)), reply_to=msg)
    except (AureonError, KeyError, ValueError) as error:
        return refusal(msg, error)


def handle_scores(msg: Message, context: Context, table: Table) -> Message:
    """Score candidate features on ``table``; refused by a client that requires DP (scores are not noised)."""
    try:
        if PrivacyFloor.from_node_config(context.node_config).require_dp:
            raise PrivacyRefused("this client requires DP and does not score features (the scores are not noised)")
        return Message(score_answer_content(answer_scores(table, scores_request_from(msg.content))), reply_to=msg)
    except (AureonError, KeyError, ValueError) as error:
        return refusal(msg, error)


def client_table(config: AureonConfig, context: Context) -> Table:
    """This node's training rows: its own file's (``dataset.per_client``), else its partition of the table's."""
    from aureon.features.tabular.prepare import client_tables, train_test_tables

    features = config.features
    if not isinstance(features, TabularFeaturesConfig):
        raise DataError(f"features={features.name} is not a tabular strategy; statistics need one")
    if per_client_tables(config.dataset):
        return own_tables(config.dataset, config.seed)[0]
    partition_id = int(context.node_config[keys.NODE_PARTITION_ID])
    num_partitions = int(context.node_config[keys.NODE_NUM_PARTITIONS])
    train, _ = train_test_tables(config.dataset, config.seed)
    tables = client_tables(train, replace(features, clients=num_partitions, centralized=False), config.seed)
    return tables[partition_id]


def register_tabular_handlers(app: ClientApp, config_source: Callable[[Context], AureonConfig]) -> None:
    """``query.tabular_statistics``, ``query.tabular_scores``, ``query.tabular_schema`` and
    ``query.tabular_pipeline`` on ``app``, and the stages of statistics summed securely
    (``query.tabular_secure_*``, ``query.tabular_names``)."""

    @app.query(keys.TABULAR_STATISTICS.split(".", 1)[1])
    def statistics(msg: Message, context: Context) -> Message:
        try:
            table = client_table(config_source(context), context)
        except AureonError as error:
            return refusal(msg, error)
        return handle_statistics(msg, context, table)

    @app.query(keys.TABULAR_SCORES.split(".", 1)[1])
    def scores(msg: Message, context: Context) -> Message:
        try:
            table = client_table(config_source(context), context)
        except AureonError as error:
            return refusal(msg, error)
        return handle_scores(msg, context, table)

    def with_table(handler: Callable[[Message, Context, Table], Message]) -> Callable[[Message, Context], Message]:
        def handle(msg: Message, context: Context) -> Message:
            try:
                table = client_table(config_source(context), context)
            except AureonError as error:
                return refusal(msg, error)
            return handler(msg, context, table)

        return handle

    def with_config(handler: Callable[[Message, Context], Message]) -> Callable[[Message, Context], Message]:
        def handle(msg: Message, context: Context) -> Message:
            try:
                config_source(context)  # a node without a config of its own refuses, as for every message
            except AureonError as error:
                return refusal(msg, error)
            return handler(msg, context)

        return handle

    app.query(keys.TABULAR_SECURE_SETUP.split(".", 1)[1])(with_config(handle_secure_setup))
    app.query(keys.TABULAR_SECURE_SHARE_KEYS.split(".", 1)[1])(with_config(handle_secure_share_keys))
    app.query(keys.TABULAR_SECURE_MASKED.split(".", 1)[1])(with_table(handle_secure_masked))
    app.query(keys.TABULAR_SECURE_UNMASK.split(".", 1)[1])(with_config(handle_secure_unmask))
    app.query(keys.TABULAR_NAMES.split(".", 1)[1])(with_table(handle_names))

    @app.query(keys.TABULAR_SCHEMA.split(".", 1)[1])
    def schema(msg: Message, context: Context) -> Message:
        try:
            config = config_source(context)
        except AureonError as error:
            return refusal(msg, error)
        return handle_schema(msg, config)

    @app.query(keys.TABULAR_PIPELINE.split(".", 1)[1])
    def pipeline(msg: Message, context: Context) -> Message:
        try:
            config_source(context)  # a node without a config of its own refuses, as for every message
        except AureonError as error:
            return refusal(msg, error)
        return handle_pipeline(msg, context)


# ---------------------------------------------------------------- server side
class GridFederation:
    """The server's ``Federation``: every question is a message to each node, every answer a reply."""

    def __init__(self, grid: Grid, node_ids: Iterable[int], *, timeout: float = 60.0) -> None:
        self.grid = grid
        self.node_ids = list(node_ids)
        self.timeout = timeout
        self.secure_round = 0  # this run's secure sums, numbered apart from training's

    def ask(self, content: RecordDict, message_type: str) -> list[Message]:
        """Send ``content`` to every node; their replies in ``node_ids`` order, or a DataError naming who failed."""
        messages = [self.grid.create_message(content, message_type, node, group_id="tabular") for node in self.node_ids]
        replies = list(self.grid.send_and_receive(messages, timeout=self.timeout))
        failed = [(r.metadata.src_node_id, r.error.reason) for r in replies if r.has_error()]
        if failed:
            node, reason = failed[0]
            raise DataError(f"node {node} did not answer {message_type}: {reason}")
        if len(replies) != len(messages):
            raise DataError(f"{len(messages) - len(replies)} node(s) did not answer {message_type} in time")
        return sorted(replies, key=lambda r: self.node_ids.index(r.metadata.src_node_id))

    def statistics(self, query: StatisticsQuery) -> list[StatisticsAnswer]:
        replies = self.ask(query_content(query), keys.TABULAR_STATISTICS)
        return [answer_from(r.content, query) for r in replies]

    def scores(self, request: ScoreRequest) -> list[ScoreAnswer]:
        return [score_answer_from(r.content) for r in self.ask(scores_content(request), keys.TABULAR_SCORES)]

    def secure_sum(self, request: SecureQuery) -> SecureSum:
        self.secure_round += 1
        return grid_secure_sum(self.grid, self.node_ids, request, server_round=self.secure_round, timeout=self.timeout)

    def category_names(self, query: StatisticsQuery, wanted: Wanted) -> list[Names]:
        replies = self.ask(names_content(query_content(query), wanted), keys.TABULAR_NAMES)
        return [names_from(r.content, query.categorical) for r in replies]
