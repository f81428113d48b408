"""The test score of a run whose server holds no rows: each client's held-out rows, weighted by their count.

With ``dataset.per_client=true`` the held-out split is each client's own
(its file's ``dataset.test_fraction``), so the server asks every connected
client to evaluate the global model and reports the example-weighted mean of
their scores and losses. A client whose privacy floor requires DP refuses
(its metrics are not noised); with no answer at all the score is NaN and a
warning says why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from aureon import keys

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientScore:
    """The weighted mean over the clients that answered, and how many did."""

    score: float
    loss: float
    examples: int
    answered: int
    refused: tuple[str, ...] = ()


def score_key(metric: str) -> str:
    """The metric key AUREON's client replies with (``eval-accuracy``, ``eval-r2``)."""
    return keys.EVAL_ACCURACY if metric == "accuracy" else f"eval-{metric}"


def weighted_score(replies: Iterable[Message], *, metric: str) -> ClientScore:
    """The example-weighted mean of the replies' score and loss; error replies are counted as refusals."""
    total = score = loss = 0.0
    answered, refused = 0, []
    for reply in replies:
        if reply.has_error():
            refused.append(f"node {reply.metadata.src_node_id}: {reply.error.reason}")
            continue
        metrics = reply.content.metric_records[keys.METRICS]
        count = float(metrics[keys.NUM_EXAMPLES])  # type: ignore[arg-type]
        total += count
        score += count * float(metrics[score_key(metric)])  # type: ignore[arg-type]
        loss += count * float(metrics[keys.EVAL_LOSS])  # type: ignore[arg-type]
        answered += 1
    if total <= 0:
        return ClientScore(math.nan, math.nan, 0, answered, tuple(refused))
    return ClientScore(score / total, loss / total, int(total), answered, tuple(refused))


def evaluate_on_clients(
    grid: Grid, arrays: ArrayRecord, *, server_round: int, metric: str, timeout: float
) -> ClientScore:
    """Ask every connected node to evaluate ``arrays`` on its held-out rows."""
    content = RecordDict({keys.ARRAYS: arrays, keys.CONFIG: ConfigRecord({keys.SERVER_ROUND: server_round})})
    messages = [
        grid.create_message(content, MessageType.EVALUATE, node, group_id=f"evaluate-{server_round}")
        for node in sorted(grid.get_node_ids())
    ]
    result = weighted_score(grid.send_and_receive(messages, timeout=timeout), metric=metric)
    if result.answered == 0:
        LOG.warning(
            "round %d: no client evaluated the model on its held-out rows (%s); the test score is NaN",
            server_round,
            "; ".join(result.refused) or "no reply",
        )
    return result
