"""UpdateValidator: malformed or out-of-bound replies are refused, the round goes on."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from aureon import keys
from aureon.strategies import UpdateValidator
from aureon.tracking import RoundLog
from tests.inprocess_grid import InProcessGrid
from tests.strategies.replies import GLOBAL, as_numpy, reply, weights

pytestmark = pytest.mark.usefixtures("server_identity")

GOOD = {keys.NUM_EXAMPLES: 10, keys.TRAIN_LOSS: 0.5}
LOSS_ONLY = {keys.TRAIN_LOSS: 0.1}
F32 = np.float32


def _validator(max_update_norm: float | None = None) -> tuple[UpdateValidator, RoundLog]:
    log = RoundLog()
    inner = FedAvg(fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1)
    validator = UpdateValidator(inner, round_log=log, max_update_norm=max_update_norm)
    grid = InProcessGrid(ClientApp(), num_nodes=2)
    validator.configure_train(1, ArrayRecord({k: Array(v) for k, v in GLOBAL.items()}), ConfigRecord(), grid)
    return validator, log


def _corrupt_bytes() -> ArrayRecord:
    record = ArrayRecord({k: Array(v + 1) for k, v in GLOBAL.items()})
    good = record["w"]
    record["w"] = Array(dtype=good.dtype, shape=good.shape, stype=good.stype, data=good.data[:-4])
    return record


BAD = [
    ("NaN", lambda: reply(2, weights(1.0, b=np.array([np.nan, 0], dtype=np.float32)), GOOD), "NaN or Inf"),
    ("Inf", lambda: reply(2, weights(1.0, w=np.full((3, 2), np.inf, dtype=np.float32)), GOOD), "NaN or Inf"),
    ("shape", lambda: reply(2, weights(1.0, w=np.ones((2, 3), dtype=F32)), GOOD), "expected float32[3, 2]"),
    ("dtype", lambda: reply(2, weights(1.0, w=np.ones((3, 2), dtype=np.float64)), GOOD), "float64"),
    ("missing tensor", lambda: reply(2, {"w": np.ones((3, 2), dtype=np.float32)}, GOOD), "missing ['b']"),
    ("extra tensor", lambda: reply(2, weights(1.0, z=np.ones(1, dtype=F32)), GOOD), "unexpected ['z']"),
    ("no arrays", lambda: reply(2, None, GOOD), "exactly one ArrayRecord"),
    ("no metrics", lambda: reply(2, weights(1.0), None), "exactly one MetricRecord"),
    ("missing weight", lambda: reply(2, weights(1.0), {keys.TRAIN_LOSS: 0.1}), "num-examples"),
    ("zero weight", lambda: reply(2, weights(1.0), {keys.NUM_EXAMPLES: 0, **LOSS_ONLY}), "num-examples"),
    ("list weight", lambda: reply(2, weights(1.0), {keys.NUM_EXAMPLES: [1, 2], **LOSS_ONLY}), "num-examples"),
    (
        "two array records",
        lambda: reply(2, weights(1.0), GOOD, extra={"more": ArrayRecord({"x": Array(np.ones(1))})}),
        "exactly one ArrayRecord",
    ),
]


@pytest.mark.parametrize("make_bad, reason", [(b, r) for _, b, r in BAD], ids=[n for n, _, _ in BAD])
def test_a_bad_reply_is_rejected_with_its_reason_and_the_rest_aggregated(make_bad, reason: str) -> None:
    validator, log = _validator()
    good = [reply(10 + i, weights(float(i)), GOOD) for i in range(3)]
    arrays, metrics = validator.aggregate_train(1, [*good, make_bad()])

    events = log.events(1)
    assert [r.node_id for r in events.rejected] == [2]
    assert reason in events.rejected[0].reason
    assert events.rejected[0].stage == "update-validation"
    assert np.allclose(as_numpy(arrays)["w"], 1.0)  # mean of 0, 1, 2
    assert metrics is not None


def test_unreadable_tensor_bytes_are_rejected() -> None:
    validator, log = _validator()
    bad = reply(2, weights(1.0), GOOD)
    bad.content[keys.ARRAYS] = _corrupt_bytes()
    arrays, _ = validator.aggregate_train(1, [reply(3, weights(2.0), GOOD), bad])
    assert "cannot be read" in log.events(1).rejected[0].reason
    assert np.allclose(as_numpy(arrays)["w"], 2.0)


def test_updates_beyond_the_norm_bound_are_rejected() -> None:
    validator, log = _validator(max_update_norm=3.0)
    small = reply(3, weights(1.0), GOOD)  # norm sqrt(8) < 3
    large = reply(4, weights(2.0), GOOD)  # norm sqrt(32) > 3
    arrays, _ = validator.aggregate_train(1, [small, large])
    (rejection,) = log.events(1).rejected
    assert rejection.node_id == 4 and "exceeds validation.max_update_norm=3.0" in rejection.reason
    assert np.allclose(as_numpy(arrays)["b"], 1.0)


def test_when_every_reply_is_rejected_the_round_keeps_the_model() -> None:
    validator, log = _validator()
    bad = reply(2, weights(1.0, b=np.array([np.nan, 0], dtype=np.float32)), GOOD)
    assert validator.aggregate_train(1, [bad]) == (None, None)
    assert len(log.events(1).rejected) == 1


def test_error_replies_pass_through_to_the_inner_strategy() -> None:
    from flwr.app import Error, Message, MessageType, RecordDict

    validator, log = _validator()
    instruction = Message(RecordDict(), dst_node_id=9, message_type=MessageType.TRAIN)
    failed = Message(Error(code=1, reason="client crashed"), reply_to=instruction)
    arrays, _ = validator.aggregate_train(1, [failed, reply(3, weights(4.0), GOOD)])
    assert np.allclose(as_numpy(arrays)["w"], 4.0)
    assert log.events(1).rejected == []


def test_metric_records_are_left_untouched() -> None:
    validator, _ = _validator()
    good = reply(3, weights(1.0), GOOD)
    validator.aggregate_train(1, [good])
    assert isinstance(good.content[keys.METRICS], MetricRecord)


DP = {keys.NUM_EXAMPLES: 10, keys.EPSILON: 1.5}  # AUREON's client under DP-SGD
PLAIN_FLOWER = {keys.NUM_EXAMPLES: 30, "train_loss": 0.7, "accuracy": 0.5}  # a quickstart-style client


def test_replies_with_other_metrics_are_aggregated_over_the_ones_they_share() -> None:
    validator, log = _validator()
    replies = [reply(3, weights(1.0), GOOD), reply(4, weights(2.0), DP), reply(5, weights(3.0), PLAIN_FLOWER)]
    arrays, metrics = validator.aggregate_train(1, replies)
    assert log.events(1).rejected == []
    assert np.allclose(as_numpy(arrays)["w"], (10 * 1.0 + 10 * 2.0 + 30 * 3.0) / 50)
    assert metrics is not None and dict(metrics) == {}  # only num-examples is shared, and FedAvg drops it


def test_a_shared_metric_is_averaged_and_reply_order_does_not_change_the_result() -> None:
    a = reply(3, weights(1.0), {**GOOD, "accuracy": 0.2})
    b = reply(4, weights(2.0), {keys.NUM_EXAMPLES: 30, keys.TRAIN_LOSS: 0.9})
    c = reply(5, weights(3.0), {**GOOD, keys.EPSILON: 1.0})
    results = []
    for order in ([a, b, c], [c, b, a], [b, a, c]):
        validator, _ = _validator()
        arrays, metrics = validator.aggregate_train(1, order)
        results.append((as_numpy(arrays)["w"], dict(metrics)))
    for arrays, metrics in results:
        assert set(metrics) == {keys.TRAIN_LOSS}
        assert metrics[keys.TRAIN_LOSS] == pytest.approx((10 * 0.5 + 30 * 0.9 + 10 * 0.5) / 50)
        np.testing.assert_allclose(arrays, results[0][0], rtol=1e-6)


@pytest.mark.parametrize(
    "odd_value",
    [float("nan"), float("inf"), [0.1, 0.2, 0.3]],
    ids=["nan", "inf", "list of another length"],
)
def test_a_metric_that_cannot_be_averaged_is_left_out_not_the_reply(odd_value: object) -> None:
    validator, log = _validator()
    first = reply(3, weights(1.0), {**GOOD, "per-class": [0.1, 0.2]})
    second = reply(4, weights(3.0), {**GOOD, "per-class": [0.3, 0.4]})
    second.content[keys.METRICS][keys.TRAIN_LOSS if not isinstance(odd_value, list) else "per-class"] = odd_value
    arrays, metrics = validator.aggregate_train(1, [first, second])
    assert log.events(1).rejected == []
    assert np.allclose(as_numpy(arrays)["w"], 2.0)
    kept = {"per-class"} if not isinstance(odd_value, list) else {keys.TRAIN_LOSS}
    assert set(dict(metrics)) == kept
    assert all(np.isfinite(v).all() for v in dict(metrics).values())


def test_a_metric_record_under_another_name_is_aggregated_with_the_rest() -> None:
    validator, _ = _validator()
    other = reply(4, weights(3.0), None, extra={"train_metrics": MetricRecord(dict(GOOD))})
    arrays, metrics = validator.aggregate_train(1, [reply(3, weights(1.0), GOOD), other])
    assert np.allclose(as_numpy(arrays)["w"], 2.0)
    assert dict(metrics) == {keys.TRAIN_LOSS: pytest.approx(0.5)}


def test_evaluation_replies_are_averaged_over_the_metrics_they_share() -> None:
    validator, _ = _validator()
    aureon = reply(3, None, {keys.NUM_EXAMPLES: 10, keys.EVAL_ACCURACY: 0.8, keys.EVAL_LOSS: 0.4})
    plain = reply(4, None, {keys.NUM_EXAMPLES: 30, keys.EVAL_ACCURACY: 0.4, "eval_loss": 1.0})
    unweighted = reply(5, None, {keys.EVAL_ACCURACY: 0.0})
    metrics = validator.aggregate_evaluate(1, [aureon, plain, unweighted])
    assert dict(metrics) == {keys.EVAL_ACCURACY: pytest.approx((10 * 0.8 + 30 * 0.4) / 40)}


def test_the_replies_passed_on_keep_their_source_node() -> None:
    seen: list[int] = []

    class Spy(FedAvg):
        def aggregate_train(self, server_round, replies):
            replies = list(replies)
            seen.extend(r.metadata.src_node_id for r in replies)
            return super().aggregate_train(server_round, replies)

    validator = UpdateValidator(Spy(fraction_evaluate=0.0), round_log=RoundLog())
    validator.configure_train(
        1,
        ArrayRecord({k: Array(v) for k, v in GLOBAL.items()}),
        ConfigRecord(),
        InProcessGrid(ClientApp(), num_nodes=2),
    )
    validator.aggregate_train(1, [reply(3, weights(1.0), GOOD), reply(4, weights(3.0), DP)])
    assert seen == [3, 4]
