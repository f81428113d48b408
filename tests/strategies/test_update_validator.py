"""UpdateValidator: malformed or out-of-bound replies are refused, the round goes on."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from aureon import keys
from aureon.strategies import RoundLedger, UpdateValidator
from tests.inprocess_grid import InProcessGrid
from tests.strategies.replies import GLOBAL, as_numpy, reply, weights

pytestmark = pytest.mark.usefixtures("server_identity")

GOOD = {keys.NUM_EXAMPLES: 10, keys.TRAIN_LOSS: 0.5}
LOSS_ONLY = {keys.TRAIN_LOSS: 0.1}
F32 = np.float32


def _validator(max_update_norm: float | None = None) -> tuple[UpdateValidator, RoundLedger]:
    ledger = RoundLedger()
    inner = FedAvg(fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1)
    validator = UpdateValidator(inner, ledger=ledger, max_update_norm=max_update_norm)
    grid = InProcessGrid(ClientApp(), num_nodes=2)
    validator.configure_train(1, ArrayRecord({k: Array(v) for k, v in GLOBAL.items()}), ConfigRecord(), grid)
    return validator, ledger


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
    ("metric names", lambda: reply(2, weights(1.0), {**GOOD, "extra-metric": 1.0}), "metric names differ"),
]


@pytest.mark.parametrize("make_bad, reason", [(b, r) for _, b, r in BAD], ids=[n for n, _, _ in BAD])
def test_a_bad_reply_is_rejected_with_its_reason_and_the_rest_aggregated(make_bad, reason: str) -> None:
    validator, ledger = _validator()
    good = [reply(10 + i, weights(float(i)), GOOD) for i in range(3)]
    arrays, metrics = validator.aggregate_train(1, [*good, make_bad()])

    events = ledger.pop(1)
    assert [r.node_id for r in events.rejected] == [2]
    assert reason in events.rejected[0].reason
    assert events.rejected[0].stage == "update-validation"
    assert np.allclose(as_numpy(arrays)["w"], 1.0)  # mean of 0, 1, 2
    assert metrics is not None


def test_unreadable_tensor_bytes_are_rejected() -> None:
    validator, ledger = _validator()
    bad = reply(2, weights(1.0), GOOD)
    bad.content[keys.ARRAYS] = _corrupt_bytes()
    arrays, _ = validator.aggregate_train(1, [reply(3, weights(2.0), GOOD), bad])
    assert "cannot be read" in ledger.pop(1).rejected[0].reason
    assert np.allclose(as_numpy(arrays)["w"], 2.0)


def test_updates_beyond_the_norm_bound_are_rejected() -> None:
    validator, ledger = _validator(max_update_norm=3.0)
    small = reply(3, weights(1.0), GOOD)  # norm sqrt(8) < 3
    large = reply(4, weights(2.0), GOOD)  # norm sqrt(32) > 3
    arrays, _ = validator.aggregate_train(1, [small, large])
    (rejection,) = ledger.pop(1).rejected
    assert rejection.node_id == 4 and "exceeds validation.max_update_norm=3.0" in rejection.reason
    assert np.allclose(as_numpy(arrays)["b"], 1.0)


def test_when_every_reply_is_rejected_the_round_keeps_the_model() -> None:
    validator, ledger = _validator()
    bad = reply(2, weights(1.0, b=np.array([np.nan, 0], dtype=np.float32)), GOOD)
    assert validator.aggregate_train(1, [bad]) == (None, None)
    assert len(ledger.pop(1).rejected) == 1


def test_error_replies_pass_through_to_the_inner_strategy() -> None:
    from flwr.app import Error, Message, MessageType, RecordDict

    validator, ledger = _validator()
    instruction = Message(RecordDict(), dst_node_id=9, message_type=MessageType.TRAIN)
    failed = Message(Error(code=1, reason="client crashed"), reply_to=instruction)
    arrays, _ = validator.aggregate_train(1, [failed, reply(3, weights(4.0), GOOD)])
    assert np.allclose(as_numpy(arrays)["w"], 4.0)
    assert ledger.pop(1).rejected == []


def test_metric_records_are_left_untouched() -> None:
    validator, _ = _validator()
    good = reply(3, weights(1.0), GOOD)
    validator.aggregate_train(1, [good])
    assert isinstance(good.content[keys.METRICS], MetricRecord)
