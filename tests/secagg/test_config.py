"""The secure_aggregation config group: defaults, ranges, and what it cannot be combined with."""

from __future__ import annotations

import pytest

from aureon.config import SecAggPlusConfig
from aureon.exceptions import ConfigError
from aureon.launch.run_config import compose_config

SECAGG = "secure_aggregation=secagg_plus"


def test_secure_aggregation_is_off_by_default_and_composes_when_chosen() -> None:
    assert not compose_config([]).secure_aggregation.enabled
    config = compose_config([SECAGG])
    assert isinstance(config.secure_aggregation, SecAggPlusConfig)
    params = config.secure_aggregation.settings().for_round(config.num_clients)
    assert (params.neighbourhood_size, params.threshold, params.modulus_bits) == (5, 3, 32)


@pytest.mark.parametrize(
    "overrides, key, hint",
    [
        (["strategy=krum"], "strategy", "need every update in the clear"),
        (["strategy=fedmedian"], "strategy", "need every update in the clear"),
        (["strategy=centralized"], "secure_aggregation", "nothing is aggregated"),
        (["compression=int8"], "compression", "no codec can shrink"),
        (["norm_bound.max_norm=1.0"], "norm_bound.max_norm", "never holds one update"),
        (["validation.max_update_norm=1.0"], "validation.max_update_norm", "clipping_range"),
        (["secure_aggregation.threshold=2"], "secure_aggregation.threshold", "more than half"),
        (["secure_aggregation.threshold=6"], "secure_aggregation.threshold", "more than half"),
        (["secure_aggregation.num_shares=4"], "secure_aggregation.num_shares", "odd number"),
        (["num_clients=600"], "secure_aggregation.modulus_bits", "raise it to >= 34"),
        (
            ["secure_aggregation.quantization_bits=32"],
            "secure_aggregation.quantization_bits",
            "modulus_bits - 1",
        ),
        (["secure_aggregation.clipping_range=0"], "secure_aggregation.clipping_range", "> 0"),
        (["secure_aggregation.max_weight=0"], "secure_aggregation.max_weight", ">= 1"),
        (["num_clients=1"], "at least 2 sampled clients", ""),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_key_and_a_hint(overrides, key, hint) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config([SECAGG, *overrides])
    assert key in str(error.value) and hint in str(error.value)


def test_secagg_plus_neighbourhoods_fit_many_clients() -> None:
    config = compose_config(
        [SECAGG, "num_clients=50", "secure_aggregation.num_shares=11", "secure_aggregation.threshold=7"]
    )
    params = config.secure_aggregation.settings().for_round(50)
    assert (params.neighbourhood_size, params.threshold) == (11, 7)
