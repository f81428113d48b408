"""Secure sums of statistics over Flower's Message API: the client's stage handlers and the server's driver.

The server runs ``SecAggServer`` and sends each stage's requests as one
message per node (``keys.TABULAR_SECURE_*``); a node that fails or refuses a
stage has dropped out, which the protocol tolerates down to its threshold.
The client keeps its protocol state under its own ``context.state`` keys,
apart from training's secure aggregation, so the two number their rounds
independently. Stage 3 carries the secure query: the client computes its
statistics vector (``client_vector``) and replies with it masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid

from aureon import keys
from aureon.data.tables import Table
from aureon.exceptions import AureonError, DataError, PrivacyRefused
from aureon.features.tabular.secure_statistics import Names, SecureQuery, Wanted, client_vector, names_in_buckets
from aureon.features.tabular.secure_sum import masked_content, settings
from aureon.federated.refusals import refusal
from aureon.privacy.floor import PrivacyFloor
from aureon.secagg import SecAggServer, SecureSum, messages
from aureon.secagg.handlers import StateKeys, handle_plain_stage, handle_setup, load, refuse, save

STORE = StateKeys(keys.STATE_SECAGG_TABULAR, keys.STATE_SECAGG_TABULAR_PROGRESS)
BUCKET_ROUND = "secure-bucket-round"


# ---------------------------------------------------------------- the secure query on the wire
def secure_query_content(request: SecureQuery) -> RecordDict:
    """What stage 3 carries besides the protocol record: the query, bounds, row bound and category list."""
    from aureon.features.tabular.messages import query_content

    content = query_content(request.query)
    config, arrays = content.config_records[keys.TABULAR], content.array_records[keys.TABULAR_ARRAYS]
    config["secure-max-rows"] = request.max_rows
    config[BUCKET_ROUND] = request.categories is None
    for column, names in (request.categories or {}).items():
        config[f"secure-categories:{column}"] = list(names)
    arrays["secure-low"] = Array(np.asarray(request.low, dtype=np.float64))
    arrays["secure-high"] = Array(np.asarray(request.high, dtype=np.float64))
    return content


def secure_query_from(content: RecordDict) -> SecureQuery:
    from aureon.features.tabular.messages import query_from

    query = query_from(content)
    config, arrays = content.config_records[keys.TABULAR], content.array_records[keys.TABULAR_ARRAYS]
    categories = None
    if not bool(config[BUCKET_ROUND]):
        categories = {
            column: tuple(str(n) for n in _list(config, f"secure-categories:{column}")) for column in query.categorical
        }
    return SecureQuery(
        query,
        low=arrays["secure-low"].numpy(),
        high=arrays["secure-high"].numpy(),
        max_rows=int(config["secure-max-rows"]),  # type: ignore[arg-type]
        categories=categories,
    )


def _list(config: ConfigRecord, key: str) -> list[Any]:
    value = config.get(key, [])
    if not isinstance(value, list):
        raise DataError(f"tabular record entry {key!r} must be a list, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------- client side
def _check_floor(context: Context, noised: bool) -> None:
    if not noised and PrivacyFloor.from_node_config(context.node_config).require_dp:
        raise PrivacyRefused("this client requires DP and answers only noised statistics (features.dp_epsilon)")


def handle_secure_setup(msg: Message, context: Context) -> Message:
    return handle_setup(msg, context, STORE)


def handle_secure_share_keys(msg: Message, context: Context) -> Message:
    return handle_plain_stage(msg, context, "share_keys", STORE)


def handle_secure_unmask(msg: Message, context: Context) -> Message:
    return handle_plain_stage(msg, context, "unmask", STORE)


def handle_secure_masked(msg: Message, context: Context, table: Table) -> Message:
    """Stage 3: take the routed shares, compute this client's statistics vector, reply with it masked."""
    try:
        request = secure_query_from(msg.content)
        _check_floor(context, request.query.noise is not None)
        vector = client_vector(table, request)
    except (AureonError, KeyError, ValueError) as error:
        return refusal(msg, error)
    try:
        client = load(context, STORE)
        client.receive_shares(messages.protocol_record(msg.content))
        content = masked_content(client, vector)
    except AureonError as error:
        return refuse(msg, context, error, STORE)
    save(context, client, STORE)
    return Message(content, reply_to=msg)


def handle_names(msg: Message, context: Context, table: Table) -> Message:
    """This client's category names in the buckets the server names (sent in the clear)."""
    from aureon.features.tabular.messages import query_from

    try:
        query = query_from(msg.content)
        _check_floor(context, query.noise is not None)
        config = msg.content.config_records[keys.TABULAR]
        wanted = {c: [int(b) for b in _list(config, f"buckets:{c}")] for c in query.categorical}
        names = names_in_buckets(table, query, wanted)
    except (AureonError, KeyError, ValueError) as error:
        return refusal(msg, error)
    reply = ConfigRecord({f"names:{c}": list(v) for c, v in names.items()})
    return Message(RecordDict({keys.TABULAR: reply}), reply_to=msg)


# ---------------------------------------------------------------- server side
def exchange(
    grid: Grid, requests: Mapping[int, RecordDict], message_type: str, *, timeout: float
) -> dict[int, RecordDict]:
    """One stage: a message per node, the replies that came back without an error (the others dropped)."""
    sent = [grid.create_message(content, message_type, node, group_id="tabular") for node, content in requests.items()]
    replies = grid.send_and_receive(sent, timeout=timeout) if sent else []
    return {r.metadata.src_node_id: r.content for r in replies if not r.has_error()}


def grid_secure_sum(
    grid: Grid, node_ids: list[int], request: SecureQuery, *, server_round: int, timeout: float
) -> SecureSum:
    """The nodes' statistics vectors summed under SecAgg, each stage a Message-API round trip."""
    server = SecAggServer(
        settings=settings(threshold=request.threshold),
        node_ids=node_ids,
        server_round=server_round,
        vector_length=int(request.scale().size) + 1,
    )

    def wrap(records: Mapping[int, ConfigRecord], extra: RecordDict | None = None) -> dict[int, RecordDict]:
        out = {}
        for node, record in records.items():
            content = RecordDict({keys.SECAGG: record})
            for name, value in (extra or RecordDict()).items():
                content[name] = value
            out[node] = content
        return out

    query = secure_query_content(request)
    requests = server.setup_requests()
    requests = server.receive_keys(exchange(grid, wrap(requests), keys.TABULAR_SECURE_SETUP, timeout=timeout))
    replies = exchange(grid, wrap(requests), keys.TABULAR_SECURE_SHARE_KEYS, timeout=timeout)
    requests = server.receive_shares(replies)
    replies = exchange(grid, wrap(requests, query), keys.TABULAR_SECURE_MASKED, timeout=timeout)
    requests = server.receive_masked(replies)
    return server.receive_unmask(exchange(grid, wrap(requests), keys.TABULAR_SECURE_UNMASK, timeout=timeout))


def names_content(query_record: RecordDict, wanted: Wanted) -> RecordDict:
    config = query_record.config_records[keys.TABULAR]
    for column, buckets in wanted.items():
        config[f"buckets:{column}"] = [int(b) for b in buckets]
    return query_record


def names_from(content: RecordDict, columns: tuple[str, ...]) -> Names:
    config = content.config_records[keys.TABULAR]
    return {c: [str(n) for n in _list(config, f"names:{c}")] for c in columns if f"names:{c}" in config}
