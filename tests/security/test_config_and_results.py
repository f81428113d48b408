"""Config ranges reject infinities, NaN and runaway round counts; results.json is always strict JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from aureon.config import MAX_NUM_ROUNDS, require
from aureon.exceptions import ConfigError
from aureon.launch.run_config import compose_config
from aureon.tracking.records import RoundRecord
from aureon.tracking.run_tracker import RunTracker, finite_json_document


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=inf", "train.lr must be a finite number > 0, got inf"),
        ("train.lr=nan", "train.lr must be a finite number > 0, got nan"),
        ("privacy.max_grad_norm=inf", "privacy.max_grad_norm must be a finite number > 0, got inf"),
        ("train.weight_decay=inf", "train.weight_decay must be a finite number >= 0, got inf"),
        ("simulation.round_timeout=inf", "simulation.round_timeout must be a finite number > 0, got inf"),
        ("privacy.target_delta=nan", "privacy.target_delta must be a finite number in (0, 1), got nan"),
    ],
)
def test_non_finite_values_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config([override])
    assert str(error.value).startswith(message)


def test_require_keeps_an_expected_text_that_already_says_finite() -> None:
    with pytest.raises(ConfigError, match=r"^x must be a finite number > 0, got -inf"):
        require(True, "x", -math.inf, "a finite number > 0")
    require(True, "x", 1.5, "> 0")  # finite values are judged by ``ok`` alone


def test_num_rounds_has_an_upper_bound() -> None:
    with pytest.raises(ConfigError) as error:
        compose_config(["num_rounds=1000000"])
    assert str(error.value).startswith(
        f"num_rounds must be an integer in [1, {MAX_NUM_ROUNDS}], got 1000000"
    )
    assert compose_config([f"num_rounds={MAX_NUM_ROUNDS}"]).num_rounds == MAX_NUM_ROUNDS


def _strict_json(path: Path) -> dict:
    """Parse as a strict JSON parser would: NaN and Infinity are not JSON."""
    def refuse(token: str) -> None:
        raise ValueError(f"non-JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_nan_in_results_is_written_as_null_with_a_note(tmp_path: Path) -> None:
    tracker = RunTracker(tmp_path, config_yaml="seed: 0\n", summary={"mode": "test"}, num_rounds=1)
    tracker.log_initial(0.1, math.inf)
    tracker.log_round(RoundRecord(round=1, test_accuracy=0.1, test_loss=math.nan, seconds=1.0))
    results = _strict_json(tmp_path / "results.json")
    assert results["initial"]["test_loss"] is None and results["final"]["test_loss"] is None
    assert results["rounds"][0]["test_loss"] is None
    assert results["non_finite_fields"] == ["initial.test_loss", "final.test_loss", "rounds[0].test_loss"]
    assert not list(tmp_path.glob(".results.json.*"))  # no temporary file left behind


def test_finished_run_returns_the_document_it_wrote(tmp_path: Path) -> None:
    tracker = RunTracker(tmp_path, config_yaml="", summary={}, num_rounds=1)
    tracker.log_round(RoundRecord(round=1, test_accuracy=math.nan, test_loss=1.0, seconds=1.0))
    results = tracker.finish({})
    assert results == _strict_json(tmp_path / "results.json")
    assert results["final"]["test_accuracy"] is None


def test_finite_document_converts_numpy_scalars_and_leaves_finite_ones_alone() -> None:
    document = finite_json_document(
        {"a": np.float32(0.5), "b": [1.0, np.float64("nan")], "c": {"d": -math.inf}, "e": np.int64(3)}
    )
    assert document == {"a": 0.5, "b": [1.0, None], "c": {"d": None}, "e": 3,
                        "non_finite_fields": ["b[1]", "c.d"]}
    json.dumps(document, allow_nan=False)
    assert "non_finite_fields" not in finite_json_document({"a": 1.0})
