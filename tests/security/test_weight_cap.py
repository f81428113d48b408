"""A client cannot set the mean alone by declaring a huge number of examples (aggregation.max_weight)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Message
from flwr.serverapp.strategy import FedAvg

from aureon import keys
from aureon.exceptions import ConfigError
from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.strategies import WeightCap
from aureon.tracking import RoundLog
from tests.inprocess_grid import InProcessGrid
from tests.strategies.replies import as_numpy, reply, weights

pytestmark = pytest.mark.usefixtures("server_identity")

HUGE = 10**9
BASE = [
    "dataset=digits",
    "model=logreg",
    "privacy=none",
    "num_clients=5",
    "num_rounds=1",
    "train.local_epochs=1",
    "train.batch_size=64",
    "train.lr=0.5",
]


def test_a_reply_declaring_a_billion_examples_is_capped_to_max_weight() -> None:
    ledger = RoundLog()
    capped = WeightCap(FedAvg(fraction_evaluate=0.0), max_weight=1000, round_log=ledger)
    replies = [
        reply(1, weights(1.0), {keys.NUM_EXAMPLES: 100}),
        reply(2, weights(1.0), {keys.NUM_EXAMPLES: 100}),
        reply(3, weights(100.0), {keys.NUM_EXAMPLES: HUGE}),
    ]
    arrays, _ = capped.aggregate_train(1, replies)
    expected = (100 * 1.0 + 100 * 1.0 + 1000 * 100.0) / 1200
    assert np.allclose(as_numpy(arrays)["w"], expected)  # uncapped it would be ~100
    (event,) = ledger.events(1).capped
    assert (event.node_id, event.declared, event.used) == (3, float(HUGE), 1000.0)
    assert replies[2].content.metric_records[keys.METRICS][keys.NUM_EXAMPLES] == HUGE  # not altered


def test_weights_at_or_below_the_cap_pass_unchanged() -> None:
    ledger = RoundLog()
    capped = WeightCap(FedAvg(fraction_evaluate=0.0), max_weight=1000, round_log=ledger)
    replies = [reply(1, weights(1.0), {keys.NUM_EXAMPLES: 1000}), reply(2, weights(3.0), {keys.NUM_EXAMPLES: 500})]
    arrays, _ = capped.aggregate_train(1, replies)
    assert np.allclose(as_numpy(arrays)["w"], (1000 * 1.0 + 500 * 3.0) / 1500)
    assert ledger.events(1).capped == []


def _declaring(node_id: int, num_examples: int):
    def intercept(message: Message, answer: Message) -> Message | None:
        if message.metadata.message_type.startswith("train") and message.metadata.dst_node_id == node_id:
            next(iter(answer.content.metric_records.values()))[keys.NUM_EXAMPLES] = num_examples
        return answer

    return intercept


def _run(num_examples: int, run_dir: Path) -> tuple[dict, dict[str, np.ndarray], int]:
    config = compose_config(BASE)
    liar = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5).node_ids[0]
    grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=5, intercept=_declaring(liar, num_examples))
    logging.getLogger("flwr").setLevel(logging.ERROR)
    results = run_server(grid, config, run_dir)
    model = {k: v.numpy() for k, v in torch.load(run_dir / "model.pt").items()}
    return results, model, liar


def test_in_a_federated_round_a_billion_examples_weigh_as_much_as_max_weight(tmp_path: Path) -> None:
    results, model, liar = _run(HUGE, tmp_path / "huge")
    (record,) = results["rounds"]
    (capped,) = record["capped"]
    assert capped == {"node_id": liar, "declared": float(HUGE), "used": 10000.0}
    assert record["num_capped"] == 1 and record["rejected"] == []
    # the same round with the client declaring exactly the cap gives the same model
    _, at_cap, _ = _run(10000, tmp_path / "at-cap")
    assert all(np.array_equal(model[k], at_cap[k]) for k in model)


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan"])
def test_max_weight_must_be_finite_and_positive(value: str) -> None:
    with pytest.raises(ConfigError, match="aggregation.max_weight"):
        compose_config([f"aggregation.max_weight={value}"])


def test_secure_aggregation_cannot_weigh_a_client_more_than_plain_aggregation() -> None:
    with pytest.raises(ConfigError, match="secure_aggregation.max_weight"):
        compose_config(["secure_aggregation=secagg_plus", "aggregation.max_weight=100"])
    config = compose_config(["secure_aggregation=secagg_plus", "secure_aggregation.max_weight=100",
                             "aggregation.max_weight=100"])
    assert config.aggregation.max_weight == 100
