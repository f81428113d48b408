"""The server's side of per-client tables: agree on the columns, fit over the Message API, send the pipeline.

With ``dataset.per_client=true`` the server holds no rows. Before round 1 it
asks every connected client for its schema (``query.tabular_schema``) and
refuses clients whose columns differ, fits the configured pipeline from the
clients' aggregates (``fit_pipeline`` over ``GridFederation``), saves it in
the run directory beside the model and sends it to every client
(``query.tabular_pipeline``), which applies it to its own rows. A resumed
run sends the pipeline it saved instead of fitting again (a second fit would
be a second release of the clients' statistics). A node that connects later
gets the same pipeline before the first round it could be sampled in, once
its schema matches the pipeline's (``PipelineDistribution``); its rows took
no part in the fit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from flwr.app import RecordDict
from flwr.serverapp import Grid

from aureon import keys
from aureon.config import AureonConfig
from aureon.config.features import TabularFeaturesConfig
from aureon.exceptions import ConfigError, DataError
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.messages import GridFederation
from aureon.features.tabular.own_table import TableSchema
from aureon.features.tabular.pipeline import PIPELINE_FILE, FittedPipeline
from aureon.features.tabular.pipeline_messages import pipeline_content, pipeline_digest, schema_from
from aureon.features.tabular.prepare import PIPELINE_DIR

LOG = logging.getLogger(__name__)


def _differences(reference: TableSchema, other: TableSchema) -> str:
    expected = set(reference.numeric + reference.categorical)
    held = set(other.numeric + other.categorical)
    details = []
    if expected - held:
        details.append(f"lacks {sorted(expected - held)}")
    if held - expected:
        details.append(f"has {sorted(held - expected)} that the others do not")
    moved = sorted(set(reference.numeric) & set(other.categorical)) + sorted(
        set(reference.categorical) & set(other.numeric)
    )
    if moved:
        details.append(f"types {moved} differently (declare them with dataset.numeric / dataset.categorical)")
    if not details:
        details.append(f"orders them {[*other.numeric, *other.categorical]}")
    return "; ".join(details)


def agreed_schema(schemas: Sequence[tuple[int, TableSchema]]) -> TableSchema:
    """The clients' common schema, with the union of their class names; a DataError names what differs."""
    if not schemas:
        raise DataError("no client answered the schema query")
    first_node, first = schemas[0]
    for node, schema in schemas[1:]:
        if (schema.numeric, schema.categorical) != (first.numeric, first.categorical):
            raise DataError(
                f"node {node}'s columns differ from node {first_node}'s: it {_differences(first, schema)} "
                f"(node {first_node}: numeric {list(first.numeric)}, categorical {list(first.categorical)}; "
                f"node {node}: numeric {list(schema.numeric)}, categorical {list(schema.categorical)})"
            )
        if schema.task != first.task:
            raise DataError(
                f"node {node}'s target is a {schema.task} target, node {first_node}'s a {first.task} one; "
                "set dataset.task on every client"
            )
    classes = tuple(str(c) for c in np.unique([c for _, s in schemas for c in s.classes]))
    return replace(first, classes=classes)


def fit_over_clients(grid: Grid, config: AureonConfig, *, node_ids: Sequence[int], timeout: float) -> FittedPipeline:
    """The pipeline ``config.features`` describes, fitted from the clients' answers only."""
    features = config.features
    if not isinstance(features, TabularFeaturesConfig):
        raise ConfigError(
            f"features must be a tabular strategy (standardize, minmax, impute, onehot, quantile_bins, generate) "
            f"with dataset.per_client=true, got {features.name!r}: the clients' columns need a shared encoding"
        )
    federation = GridFederation(grid, node_ids, timeout=timeout)
    replies = federation.ask(RecordDict(), keys.TABULAR_SCHEMA)
    schema = agreed_schema([(r.metadata.src_node_id, schema_from(r.content)) for r in replies])
    if schema.task == "classification" and len(schema.classes) < 2:
        raise DataError(f"the clients' targets hold {len(schema.classes)} class(es) in all; a classifier needs 2")
    target = str(getattr(config.dataset, "target", None) or "target")
    columns = Columns(schema.numeric, schema.categorical, schema.task, target=target)
    fitted = replace(features, clients=len(node_ids), centralized=False)
    pipeline = fit_pipeline(fitted, columns, federation, seed=config.seed)
    return replace(pipeline, classes=schema.classes if schema.task == "classification" else None)


def send_pipeline(grid: Grid, pipeline: FittedPipeline, *, node_ids: Sequence[int], timeout: float) -> None:
    """Give every node the pipeline; a node that stored something else (or nothing) is a DataError."""
    expected = pipeline_digest(pipeline)
    replies = GridFederation(grid, node_ids, timeout=timeout).ask(pipeline_content(pipeline), keys.TABULAR_PIPELINE)
    for reply in replies:
        got = reply.content.config_records[keys.TABULAR].get("digest")
        if got != expected:
            raise DataError(
                f"node {reply.metadata.src_node_id} stored a feature pipeline of digest {got!r}, expected {expected!r}"
            )


class PipelineDistribution:
    """Which nodes hold the run's pipeline; a node that joins later is sent it before the next round.

    A newcomer whose columns, kinds or classes do not fit the pipeline is
    refused once (logged with what differs) and not asked again: it would
    refuse to train without a pipeline, and the round goes on without it.
    """

    def __init__(self, grid: Grid, pipeline: FittedPipeline, *, holders: Sequence[int], timeout: float) -> None:
        self.grid = grid
        self.pipeline = pipeline
        self.timeout = timeout
        self.holders = {int(n) for n in holders}
        self.refused: dict[int, str] = {}

    def reference_schema(self) -> TableSchema:
        task = "regression" if self.pipeline.target is not None else "classification"
        return TableSchema(self.pipeline.numeric, self.pipeline.categorical, task, self.pipeline.classes or ())

    def newcomers(self) -> list[int]:
        connected = {int(n) for n in self.grid.get_node_ids()}
        return sorted(connected - self.holders - set(self.refused))

    def before_round(self, server_round: int) -> None:
        """Check and equip the nodes that connected since the last round."""
        for node in self.newcomers():
            try:
                federation = GridFederation(self.grid, [node], timeout=self.timeout)
                schema = schema_from(federation.ask(RecordDict(), keys.TABULAR_SCHEMA)[0].content)
                self._check(node, schema)
                send_pipeline(self.grid, self.pipeline, node_ids=[node], timeout=self.timeout)
            except DataError as error:
                self.refused[node] = str(error)
                LOG.warning(
                    "round %d: node %d joined late and was not given the feature pipeline: %s",
                    server_round,
                    node,
                    error,
                )
                continue
            self.holders.add(node)
            LOG.info("round %d: node %d joined late and now holds the run's feature pipeline", server_round, node)

    def _check(self, node: int, schema: TableSchema) -> None:
        reference = self.reference_schema()
        if (schema.numeric, schema.categorical) != (reference.numeric, reference.categorical):
            raise DataError(
                f"node {node}'s columns differ from the run's feature pipeline: it {_differences(reference, schema)}"
            )
        if schema.task != reference.task:
            raise DataError(f"node {node}'s target is a {schema.task} target, the run's a {reference.task} one")
        unknown = sorted(set(schema.classes) - set(reference.classes))
        if unknown:
            raise DataError(f"node {node}'s target holds classes {unknown[:5]} that the run's model does not know")


def connected_nodes(grid: Grid, *, minimum: int, timeout: float) -> list[int]:
    """The nodes connected once ``minimum`` have joined (or ``timeout`` passed): who answers the fit."""
    from aureon.federated.rounds import wait_for_nodes

    wait_for_nodes(grid, minimum=minimum, timeout=timeout)
    node_ids = sorted(int(n) for n in grid.get_node_ids())
    if len(node_ids) < minimum:
        raise DataError(
            f"only {len(node_ids)} of the {minimum} expected clients connected within {timeout:g} s; "
            "the feature fit over per-client tables needs them all"
        )
    return node_ids


def prepare_client_tables(
    grid: Grid, config: AureonConfig, run_dir: Path, *, minimum: int, timeout: float
) -> PipelineDistribution:
    """Fit (or, on resume, reload) the run's pipeline, save it beside the model, send it to every client."""
    node_ids = connected_nodes(grid, minimum=minimum, timeout=timeout)
    saved = Path(run_dir) / PIPELINE_DIR
    if config.resume is not None and (saved / PIPELINE_FILE).is_file():
        pipeline = FittedPipeline.load(saved)
        LOG.info("resume: sending the feature pipeline fitted before, %s", saved)
    else:
        pipeline = fit_over_clients(grid, config, node_ids=node_ids, timeout=timeout)
        pipeline.save(saved)
    send_pipeline(grid, pipeline, node_ids=node_ids, timeout=timeout)
    return PipelineDistribution(grid, pipeline, holders=node_ids, timeout=timeout)
