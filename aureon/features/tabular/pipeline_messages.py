"""The messages around a fit over per-client tables: a client's schema in, the fitted pipeline out.

``query.tabular_schema``: a client answers with the names and kinds of its
columns, its task and its class names (no row, no count), so the server can
check that the clients agree before any statistic is summed.
``query.tabular_pipeline``: the server sends the run's fitted pipeline (its
JSON document and its arrays, the same parts it saves beside the model); the
client keeps it for the run and replies with the digest of what it stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict

from aureon import keys
from aureon.config import AureonConfig
from aureon.exceptions import AureonError, DataError
from aureon.features.tabular.own_table import TableSchema, keep_pipeline, own_tables, schema_of
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.federated.refusals import refusal


def _strings(config: ConfigRecord, key: str) -> tuple[str, ...]:
    value = config.get(key)
    if not isinstance(value, list):
        raise DataError(f"tabular record entry {key!r} must be a list, got {type(value).__name__}")
    return tuple(str(v) for v in value)


# ---------------------------------------------------------------- schema
def schema_content(schema: TableSchema) -> RecordDict:
    record: dict[str, Any] = {
        "numeric": list(schema.numeric),
        "categorical": list(schema.categorical),
        "task": schema.task,
        "classes": list(schema.classes),
    }
    return RecordDict({keys.TABULAR: ConfigRecord(record)})


def schema_from(content: RecordDict) -> TableSchema:
    config = content.config_records[keys.TABULAR]
    return TableSchema(
        numeric=_strings(config, "numeric"),
        categorical=_strings(config, "categorical"),
        task=str(config["task"]),
        classes=_strings(config, "classes"),
    )


# ---------------------------------------------------------------- pipeline
def pipeline_digest(pipeline: FittedPipeline) -> str:
    """SHA-256 of the pipeline's document and arrays: the same numbers give the same digest."""
    sha = hashlib.sha256(json.dumps(pipeline.document(), sort_keys=True).encode())
    for name, array in sorted(pipeline.arrays().items()):
        sha.update(name.encode() + b"\0" + repr(array.shape).encode() + np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


def pipeline_content(pipeline: FittedPipeline) -> RecordDict:
    arrays = ArrayRecord({name: Array(np.ascontiguousarray(a)) for name, a in pipeline.arrays().items()})
    document = ConfigRecord({"document": json.dumps(pipeline.document(), sort_keys=True)})
    return RecordDict({keys.TABULAR: document, keys.TABULAR_ARRAYS: arrays})


def pipeline_from(content: RecordDict) -> FittedPipeline:
    config, record = content.config_records[keys.TABULAR], content.array_records[keys.TABULAR_ARRAYS]
    try:
        document = json.loads(str(config["document"]))
    except ValueError as error:
        raise DataError(f"the server's feature pipeline is not JSON ({error})") from error
    arrays = {name: np.asarray(array.numpy(), dtype=np.float64) for name, array in record.items()}
    return FittedPipeline.from_parts(document, arrays, where="the server's feature pipeline")


def digest_content(digest: str) -> RecordDict:
    return RecordDict({keys.TABULAR: ConfigRecord({"digest": digest})})


# ---------------------------------------------------------------- client side
def handle_schema(msg: Message, config: AureonConfig) -> Message:
    """Answer with this client's schema (its own table's columns, task and class names)."""
    try:
        train, test = own_tables(config.dataset, config.seed)
        return Message(schema_content(schema_of(train, test)), reply_to=msg)
    except (AureonError, KeyError, ValueError) as error:
        return refusal(msg, error)


def handle_pipeline(msg: Message, context: Context) -> Message:
    """Keep the run's pipeline in this client's state directory; reply with its digest."""
    try:
        pipeline = pipeline_from(msg.content)
        keep_pipeline(context, pipeline)
        return Message(digest_content(pipeline_digest(pipeline)), reply_to=msg)
    except (AureonError, KeyError, ValueError, OSError) as error:
        return refusal(msg, error)
