"""AUREON's round loop: Flower's ``Strategy.start`` sequence, able to start at any round.

The calls per round are the same as Flower's (configure_train,
send_and_receive, aggregate_train, configure/aggregate_evaluate, then the
server-side evaluation); what is added is what a deployment needs: the
loop can begin at round k+1 after a resume, replies that never came are
reported, a round with fewer than ``min_train_nodes`` replies (or whose
replies were all rejected) keeps the previous model and says why, each
round's train config is built for that round (``round_train_config``), and a
callback runs after each completed round (checkpoint).
The round log hears of each round's start, its missing replies and where
its time went, and writes the round once its checkpoint is saved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.config import TrainConfig
from aureon.exceptions import PrivacyBudgetExhausted
from aureon.strategies.wrapper import strategy_chain
from aureon.tracking.phases import AGGREGATE, CHECKPOINT, CONFIGURE, EVALUATE, TRAIN
from aureon.tracking.round_log import RoundLog

LOG = logging.getLogger(__name__)

# Server-optimizer state that lives on Flower's strategies between rounds
# (FedOpt family: m_t, v_t; FedAvgM: momentum_vector).
STRATEGY_STATE_ATTRS = ("m_t", "v_t", "momentum_vector")

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]
RoundEndFn = Callable[[int, ArrayRecord], None]
TrainConfigFn = Callable[[int], ConfigRecord]
# After a round is written: its server-side figures; a reason to stop the run early, or None to go on.
RoundEvaluatedFn = Callable[[int, MetricRecord | None], str | None]


def round_train_config(train: TrainConfig, *, server_round: int, num_rounds: int, run_key: str) -> ConfigRecord:
    """What the server asks of every client in ``server_round``: Flower's customary keys and AUREON's run key.

    A plain Flower ClientApp reads ``lr`` (and often ``local-epochs``) from
    here; AUREON's client takes them over its own config and plans its DP
    budget over ``num-rounds`` (aureon/federated/train_request.py). ``lr`` is
    the round's rate after ``train.lr_decay``, so both kinds of client follow
    the config's schedule.
    """
    this_round = train.for_round(server_round)
    return ConfigRecord(
        {
            keys.SERVER_ROUND: server_round,
            keys.NUM_ROUNDS: num_rounds,
            keys.LR: this_round.lr,
            keys.LOCAL_EPOCHS: this_round.local_epochs,
            keys.RUN_KEY: run_key,
        }
    )


def capture_strategy_state(strategy: Strategy) -> dict[str, dict[str, np.ndarray] | list[np.ndarray]]:
    """Copies of the optimizer state found anywhere in the wrapper chain."""
    state: dict[str, dict[str, np.ndarray] | list[np.ndarray]] = {}
    for depth, part in enumerate(strategy_chain(strategy)):
        for attr in STRATEGY_STATE_ATTRS:
            value = getattr(part, attr, None)
            if isinstance(value, dict) and value:
                state[f"{depth}.{attr}"] = {k: np.array(v, copy=True) for k, v in value.items()}
            elif isinstance(value, list) and value:
                state[f"{depth}.{attr}"] = [np.array(v, copy=True) for v in value]
    return state


def restore_strategy_state(strategy: Strategy, state: dict[str, dict[str, np.ndarray] | list[np.ndarray]]) -> None:
    """Put captured optimizer state back; a key that fits no strategy attribute is an error."""
    parts = list(strategy_chain(strategy))
    for key, value in state.items():
        depth_text, attr = key.split(".", 1)
        depth = int(depth_text)
        if depth >= len(parts) or attr not in STRATEGY_STATE_ATTRS or not hasattr(parts[depth], attr):
            names = [type(p).__name__ for p in parts]
            raise ValueError(
                f"checkpoint holds strategy state {key!r}, but the strategy chain {names} has no "
                f"attribute {attr!r} at depth {depth}; resume with the run's own strategy config"
            )
        setattr(parts[depth], attr, value)


def wait_for_nodes(grid: Grid, *, minimum: int, timeout: float) -> int:
    """Wait until ``minimum`` nodes are connected, so the strategy sizes its sample on all of them.

    Flower's FedAvg computes the sample size from the nodes connected *before*
    it waits for ``min_available_nodes``; a node that reconnects during that
    wait would be connected but left out of the round.
    """
    deadline = time.monotonic() + timeout
    while (count := len(list(grid.get_node_ids()))) < minimum and time.monotonic() < deadline:
        time.sleep(1.0)
    return count


def run_rounds(
    *,
    strategy: Strategy,
    grid: Grid,
    arrays: ArrayRecord,
    first_round: int,
    num_rounds: int,
    timeout: float,
    min_train_replies: int,
    min_available_nodes: int,
    train_config: TrainConfigFn,
    round_log: RoundLog,
    evaluate_fn: EvaluateFn,
    on_round_end: RoundEndFn,
    on_round_evaluated: RoundEvaluatedFn | None = None,
    before_round: Callable[[int], None] | None = None,
) -> ArrayRecord:
    """Run rounds ``first_round..num_rounds``; returns the final global arrays.

    ``train_config(r)`` is the ConfigRecord sent with round r's train messages.
    ``evaluate_fn`` reports its figures to ``round_log``; ``on_round_end``
    (the checkpoint) runs before the round is written, so its time is the
    round's too. A strategy whose budget the next round would pass raises
    PrivacyBudgetExhausted from configure_train: the loop stops there and
    results.json says why. ``on_round_evaluated`` (an HPO pruner) hears each
    written round but the last; a reason it returns ends the run there, and
    results.json says it. ``before_round(r)`` runs once the nodes are
    connected, before sampling (it equips nodes that joined late).
    """
    if first_round == 1:
        evaluate_fn(0, arrays)
    for server_round in range(first_round, num_rounds + 1):
        LOG.debug("round %d/%d", server_round, num_rounds)
        wait_for_nodes(grid, minimum=min_available_nodes, timeout=timeout)
        if before_round is not None:
            before_round(server_round)
        round_log.begin(server_round)
        try:
            with round_log.phase(server_round, CONFIGURE):
                messages = list(strategy.configure_train(server_round, arrays, train_config(server_round), grid))
        except PrivacyBudgetExhausted as error:  # a server-side budget (client-level DP): stop before the round
            LOG.warning("round %d: %s", server_round, error)
            round_log.stop(server_round, str(error))
            break
        with round_log.phase(server_round, TRAIN):
            replies = list(grid.send_and_receive(messages, timeout=timeout)) if messages else []
        # Match by message id: Flower's own error replies (node unavailable) come from the SuperLink.
        answered = {reply.metadata.reply_to_message_id for reply in replies}
        for message in messages:
            if message.metadata.message_id not in answered:
                round_log.fail(
                    server_round,
                    node_id=message.metadata.dst_node_id,
                    reason=f"no reply within the round timeout ({timeout:g} s)",
                )
        valid = [r for r in replies if not r.has_error()]
        with round_log.phase(server_round, AGGREGATE):
            if len(valid) < min_train_replies:
                reason = (
                    f"{len(valid)} valid replies, fewer than deployment.min_train_nodes="
                    f"{min_train_replies}: the round keeps the previous global model"
                )
                LOG.warning("round %d: %s", server_round, reason)
                round_log.abort(server_round, reason)
                strategy.aggregate_train(server_round, [r for r in replies if r.has_error()])
            else:
                aggregated, _ = strategy.aggregate_train(server_round, replies)
                if aggregated is not None:
                    arrays = aggregated
                elif round_log.events(server_round).error is None:  # else a wrapper said why
                    reason = (
                        f"none of the {len(valid)} valid replies was aggregated (see the round's rejected "
                        "replies): the round keeps the previous global model"
                    )
                    LOG.warning("round %d: %s", server_round, reason)
                    round_log.abort(server_round, reason)
        with round_log.phase(server_round, EVALUATE):
            evaluate_messages = list(strategy.configure_evaluate(server_round, arrays, ConfigRecord(), grid))
            if evaluate_messages:
                strategy.aggregate_evaluate(server_round, grid.send_and_receive(evaluate_messages, timeout=timeout))
            metrics = evaluate_fn(server_round, arrays)
        with round_log.phase(server_round, CHECKPOINT):
            on_round_end(server_round, arrays)
        round_log.close(server_round)
        if on_round_evaluated is not None and server_round < num_rounds:
            stop = on_round_evaluated(server_round, metrics)
            if stop:
                round_log.stop(server_round + 1, stop)
                break
    return arrays
