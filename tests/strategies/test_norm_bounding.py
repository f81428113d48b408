"""NormBounding: each update is scaled down to the bound before the inner strategy sees it."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from aureon import keys
from aureon.strategies import NormBounding
from aureon.strategies.norm_bounding import bound_update
from aureon.tracking import RoundLog
from tests.inprocess_grid import InProcessGrid
from tests.strategies.replies import GLOBAL, as_numpy, reply, weights


def test_bound_update_scales_long_updates_along_their_direction() -> None:
    reference = {"a": np.zeros(2, dtype=np.float32)}
    bounded, norm = bound_update({"a": np.array([3.0, 4.0], dtype=np.float32)}, reference, max_norm=1.0)
    assert norm == pytest.approx(5.0)
    assert np.allclose(bounded["a"], [0.6, 0.8]) and bounded["a"].dtype == np.float32
    short = {"a": np.array([0.3, 0.4], dtype=np.float32)}
    assert bound_update(short, reference, max_norm=1.0)[0] is short


def test_bound_update_measures_the_distance_from_the_global_model() -> None:
    reference = {"a": np.array([10.0, 10.0])}
    bounded, norm = bound_update({"a": np.array([13.0, 14.0])}, reference, max_norm=2.5)
    assert norm == pytest.approx(5.0)
    assert np.allclose(bounded["a"], [11.5, 12.0])


@pytest.mark.usefixtures("server_identity")
def test_the_wrapper_bounds_each_reply_before_averaging() -> None:
    inner = FedAvg(fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1)
    wrapper = NormBounding(inner, max_norm=1.0, round_log=RoundLog())
    grid = InProcessGrid(ClientApp(), num_nodes=2)
    wrapper.configure_train(1, ArrayRecord({k: Array(v) for k, v in GLOBAL.items()}), ConfigRecord(), grid)
    honest = reply(1, weights(0.1), {keys.NUM_EXAMPLES: 1})  # norm 0.1 * sqrt(8) < 1: untouched
    attacker = reply(2, weights(100.0), {keys.NUM_EXAMPLES: 1})  # scaled to norm 1
    arrays, _ = wrapper.aggregate_train(1, [honest, attacker])
    expected = (0.1 + 1 / np.sqrt(8)) / 2
    assert np.allclose(as_numpy(arrays)["w"], expected, atol=1e-6)


def test_a_non_positive_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_norm"):
        NormBounding(FedAvg(), max_norm=0.0, round_log=RoundLog())
