"""How AUREON's server takes replies from any client: by source node, in digest order, epsilon where required."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from aureon import keys
from aureon.config import TrainConfig
from aureon.exceptions import ConfigError
from aureon.federated.apps import make_client_app
from aureon.federated.rounds import round_train_config
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.strategies import UpdateValidator, build_server_strategy, strategy_chain
from aureon.strategies.round_recorder import RoundRecorder, content_digest
from aureon.strategies.update_validator import NO_EPSILON, STAGE
from aureon.tracking import RoundLog
from aureon.tracking.records import Rejection
from tests.inprocess_grid import InProcessGrid
from tests.strategies.replies import GLOBAL, as_numpy, reply, weights

pytestmark = pytest.mark.usefixtures("server_identity")

DIGITS = [
    "dataset=digits",
    "model=cnn",
    "features=none",
    "train.lr=0.05",
    "train.local_epochs=1",
    "train.batch_size=32",
    "seed=0",
]


class Seen(FedAvg):
    """Notes the source nodes of the replies it is handed, in order, and aggregates nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[int] = []

    def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def]
        self.nodes = [r.metadata.src_node_id for r in replies]
        return None, None


def _labelled(message: Message, partition: int) -> Message:
    message.content[keys.CLIENT_LABEL] = ConfigRecord({keys.LABEL_PARTITION_ID: partition})
    return message


def _three_replies(node_ids: tuple[int, int, int]) -> list[Message]:
    """Updates whose float32 sum depends on the order they are added in."""
    values = (1e7, 0.3, -1e7)
    return [reply(node, weights(value), {keys.NUM_EXAMPLES: 10}) for node, value in zip(node_ids, values, strict=True)]


def test_the_aggregate_does_not_depend_on_arrival_order_or_node_ids() -> None:
    aggregates, unordered = set(), set()
    for node_ids in ((3, 4, 5), (3, 5, 4)):
        for order in itertools.permutations(range(3)):
            replies = _three_replies(node_ids)
            arrived = [replies[i] for i in order]
            arrays, _ = RoundRecorder(FedAvg(), round_log=RoundLog()).aggregate_train(1, arrived)
            aggregates.add(as_numpy(arrays)["w"].tobytes())
            plain, _ = FedAvg().aggregate_train(1, arrived)
            unordered.add(as_numpy(plain)["w"].tobytes())
    assert len(unordered) > 1  # these updates do show the order they were summed in
    assert len(aggregates) == 1


def test_the_digest_covers_arrays_and_metrics_but_not_the_sender() -> None:
    same = [reply(node, weights(1.0), {keys.NUM_EXAMPLES: 10}) for node in (3, 4)]
    assert content_digest(same[0].content) == content_digest(same[1].content)
    other_weight = reply(3, weights(1.0), {keys.NUM_EXAMPLES: 11})
    other_tensor = reply(3, weights(1.0, b=np.full(2, 5.0, dtype=np.float32)), {keys.NUM_EXAMPLES: 10})
    digests = {content_digest(m.content) for m in (same[0], other_weight, other_tensor)}
    assert len(digests) == 3


def test_clients_are_recorded_by_node_with_their_label_and_loss_under_either_name() -> None:
    log = RoundLog()
    aureon = _labelled(reply(41, weights(1.0), {keys.NUM_EXAMPLES: 10, keys.TRAIN_LOSS: 0.5}), 1)
    plain = reply(7, weights(2.0), {keys.NUM_EXAMPLES: 30, "train_loss": 0.25})
    diverged = reply(99, weights(3.0), {keys.NUM_EXAMPLES: 5, keys.TRAIN_LOSS: float("nan")})
    inner = Seen()
    RoundRecorder(inner, round_log=log).aggregate_train(1, [plain, diverged, aureon])
    assert sorted(inner.nodes) == [7, 41, 99]
    recorded = [(c.node_id, c.partition_id, c.num_examples, c.train_loss) for c in log.events(1).clients]
    assert recorded == [(41, 1, 10, 0.5), (7, None, 30, 0.25), (99, None, 5, None)]


@pytest.mark.parametrize("label", [-1, True, "0", 2.0])
def test_a_label_that_is_not_a_partition_number_is_ignored(label: object) -> None:
    log = RoundLog()
    message = reply(7, weights(1.0), {keys.NUM_EXAMPLES: 10})
    message.content[keys.CLIENT_LABEL] = ConfigRecord({keys.LABEL_PARTITION_ID: label})  # type: ignore[dict-item]
    RoundRecorder(Seen(), round_log=log).aggregate_train(1, [message])
    assert log.events(1).clients[0].partition_id is None


def _validator(*, require_epsilon: bool) -> tuple[UpdateValidator, RoundLog]:
    log = RoundLog()
    validator = UpdateValidator(FedAvg(fraction_evaluate=0.0), round_log=log, require_epsilon=require_epsilon)
    grid = InProcessGrid(ClientApp(), num_nodes=2)
    validator.configure_train(1, ArrayRecord({k: Array(v) for k, v in GLOBAL.items()}), ConfigRecord(), grid)
    return validator, log


@pytest.mark.parametrize(
    "metrics",
    [{"train_loss": 0.3}, {keys.EPSILON: float("nan")}, {keys.EPSILON: -1.0}, {keys.EPSILON: [1.0]}],
    ids=["no epsilon", "nan", "negative", "list"],
)
def test_with_require_client_dp_a_reply_without_an_epsilon_is_rejected_with_the_reason(
    metrics: dict[str, object],
) -> None:
    validator, log = _validator(require_epsilon=True)
    private = reply(3, weights(1.0), {keys.NUM_EXAMPLES: 10, keys.EPSILON: 1.5})
    plain = reply(4, weights(2.0), {keys.NUM_EXAMPLES: 10, **metrics})  # type: ignore[dict-item]
    arrays, _ = validator.aggregate_train(1, [private, plain])
    assert np.allclose(as_numpy(arrays)["w"], 1.0)
    assert log.events(1).rejected == [Rejection(node_id=4, stage=STAGE, reason=NO_EPSILON)]
    assert "privacy.require_client_dp=true" in NO_EPSILON


def test_without_the_requirement_a_reply_without_epsilon_is_aggregated() -> None:
    validator, log = _validator(require_epsilon=False)
    private = reply(3, weights(1.0), {keys.NUM_EXAMPLES: 10, keys.EPSILON: 1.5})
    plain = reply(4, weights(2.0), {keys.NUM_EXAMPLES: 10, "train_loss": 0.3})
    arrays, _ = validator.aggregate_train(1, [private, plain])
    assert np.allclose(as_numpy(arrays)["w"], 1.5) and log.events(1).rejected == []


@pytest.mark.parametrize(
    "overrides, required",
    [
        (["privacy=dp_sgd"], True),
        (["privacy=dp_sgd", "validation.enabled=false"], True),  # the requirement keeps validation on
        (["privacy=dp_sgd", "privacy.require_client_dp=false"], False),
        (["privacy=none"], False),
    ],
)
def test_the_server_stack_requires_client_epsilon_as_the_privacy_config_says(
    overrides: list[str], required: bool
) -> None:
    config = compose_config([*DIGITS, *overrides])
    stack = build_server_strategy(config, round_log=RoundLog()).strategy
    validators = [part for part in strategy_chain(stack) if isinstance(part, UpdateValidator)]
    assert [v.require_epsilon for v in validators] == ([True] if required else [False])


def test_each_round_sends_flowers_customary_train_config() -> None:
    train = TrainConfig(lr=0.1, lr_decay=0.5, local_epochs=2)
    record = round_train_config(train, server_round=3, num_rounds=4, run_key="run-a")
    assert dict(record) == {
        keys.SERVER_ROUND: 3,
        keys.NUM_ROUNDS: 4,
        keys.LR: pytest.approx(0.025),
        keys.LOCAL_EPOCHS: 2,
        keys.RUN_KEY: "run-a",
    }


def test_the_flwr_run_server_app_without_run_config_refuses_naming_what_is_missing() -> None:
    from server.app import app

    grid = InProcessGrid(ClientApp(), num_nodes=2)
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    with pytest.raises(ConfigError, match="this AUREON ServerApp found no config: its run_config has no 'overrides'"):
        app(grid, context)


@pytest.mark.integration
def test_the_same_seed_and_config_give_the_same_numbers_whatever_the_node_ids(tmp_path: Path) -> None:
    config = compose_config([*DIGITS, "privacy=none", "num_clients=3", "num_rounds=2", "model=logreg"])
    runs = []
    for grid_seed in (0, 1):
        grid = InProcessGrid(make_client_app(lambda _ctx: config), num_nodes=3, seed=grid_seed)
        results = run_server(grid, config, tmp_path / f"grid-{grid_seed}")
        nodes = {c["node_id"] for r in results["rounds"] for c in r["clients"]}
        assert nodes == set(grid.node_ids)
        runs.append(
            (
                [(r["test_accuracy"], r["test_loss"]) for r in results["rounds"]],
                {k: v.numpy().tobytes() for k, v in torch.load(tmp_path / f"grid-{grid_seed}" / "model.pt").items()},
            )
        )
    assert runs[0] == runs[1]
