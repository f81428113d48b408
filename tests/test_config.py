"""Config composition and clear errors for bad values (every option: tests/test_registry.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import ConfigKeyError, ValidationError

from aureon.config import (
    FeatureLinearConfig,
    FeaturesConfig,
    FedAvgConfig,
    ScatteringFeaturesConfig,
    TrainConfig,
    check_aggregation,
    check_model_inputs,
    register_configs,
    scattering_maps,
    to_typed,
)
from aureon.config.registry import REGISTRY
from aureon.exceptions import AureonError, ConfigError
from aureon.launch.run_config import compose_config, config_from_run_config

REPO = Path(__file__).resolve().parents[1]


def test_mnist_option_composes_with_a_real_folder(tiny_mnist_dir: Path) -> None:
    config = compose_config(["dataset=mnist", f"dataset.path={tiny_mnist_dir}"])
    assert config.dataset.name == "mnist"
    assert config.dataset.path == str(tiny_mnist_dir)


def test_issue_overrides_are_top_level_names(tiny_mnist_dir: Path) -> None:
    config = compose_config(
        [
            "num_clients=10",
            "num_rounds=8",
            "strategy=fedprox",
            "privacy=dp_sgd",
            "privacy.target_epsilon=1.0",
            "partition=dirichlet",
            "partition.alpha=0.3",
            "dataset=mnist",
            f"dataset.path={tiny_mnist_dir}",
        ]
    )
    assert (config.num_clients, config.num_rounds) == (10, 8)
    assert config.strategy.name == "fedprox"
    assert config.privacy.target_epsilon == 1.0
    assert config.partition.alpha == 0.3


def test_run_config_overrides_compose_the_same_config() -> None:
    # compose_config caches by overrides: compose the expected config with Hydra directly,
    # so a wrong split of the run_config string cannot be compared with itself.
    from_flwr = config_from_run_config({"overrides": "num_rounds=3 privacy=none"})
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        direct = to_typed(compose(config_name="config", overrides=["num_rounds=3", "privacy=none"]))
    assert from_flwr is not direct
    assert (direct.num_rounds, direct.privacy.name) == (3, "none")
    assert from_flwr == direct
    assert from_flwr != compose_config(["num_rounds=4", "privacy=none"])


def test_train_defaults_live_in_the_dataclass() -> None:
    """conf/config.yaml sets no train values: a composed run trains with TrainConfig's defaults."""
    assert compose_config([]).train == TrainConfig()
    assert (TrainConfig().batch_size, TrainConfig().lr, TrainConfig().momentum) == (128, 0.5, 0.5)


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("num_clients=0", "num_clients", "0"),
        ("num_rounds=-2", "num_rounds", "-2"),
        ("privacy.target_epsilon=-1", "privacy.target_epsilon", "-1.0"),
        ("privacy.target_delta=2", "privacy.target_delta", "2.0"),
        ("train.lr=0", "train.lr", "0.0"),
        ("partition=dirichlet", None, None),
    ],
)
def test_bad_values_name_key_value_and_expectation(override: str, key: str, value: str) -> None:
    if key is None:  # a valid override, as a control
        compose_config([override])
        return
    with pytest.raises(ConfigError) as error:
        compose_config([override])
    message = str(error.value)
    assert message.startswith(f"{key} must be")
    assert f"got {value}" in message


def test_dirichlet_alpha_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"partition.alpha must be > 0, got -0.5"):
        compose_config(["partition=dirichlet", "partition.alpha=-0.5"])


def test_dataset_path_without_idx_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AureonError, match=r"dataset.path=.*holds no train-images-idx3-ubyte"):
        compose_config(["dataset=mnist", f"dataset.path={tmp_path}"])


def test_mnist_needs_a_path() -> None:
    with pytest.raises(ConfigError, match=r"dataset.path must be a folder"):
        compose_config(["dataset=mnist"])


def test_unknown_strategy_lists_the_options() -> None:
    with pytest.raises(HydraException) as error:
        compose_config(["strategy=fedmagic"])
    assert "strategy" in str(error.value) and "fedavg" in str(error.value)


def test_typo_and_wrong_type_fail_at_composition_with_the_key() -> None:
    with pytest.raises((ConfigKeyError, HydraException)) as typo:
        compose_config(["privacy.target_epsilom=1"])
    assert "target_epsilom" in str(typo.value)
    with pytest.raises((ValidationError, HydraException)) as wrong_type:
        compose_config(["num_rounds=many"])
    assert "num_rounds" in str(wrong_type.value)


def test_a_key_added_with_plus_that_nothing_reads_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown config keys 'foo', 'train.lr_typo'"):
        compose_config(["+foo=1", "+train.lr_typo=0.1"])


def test_cli_stops_before_training_with_one_clear_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "outputs" / "day" / "time"
    keep = tmp_path / "other-run"
    keep.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "simulations.run", "num_clients=0", f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "error: num_clients must be an integer >= 1, got 0" in result.stderr
    assert not run_dir.exists(), "a run stopped by a bad value leaves no empty run directory behind"
    assert keep.exists()


# ----------------------------------------- each option answers for itself (no class lists)
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["privacy=dp_sgd", "privacy.enabled=false"], "true for privacy=dp_sgd (choose privacy=none), got False"),
        (["privacy=none", "privacy.enabled=true"], "false for privacy=none (choose privacy=dp_sgd), got True"),
    ],
)
def test_privacy_enabled_cannot_contradict_the_chosen_option(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"^privacy.enabled must be {re.escape(expected)}"):
        compose_config(overrides)


def test_the_privacy_switch_hands_over_the_dp_settings() -> None:
    on = compose_config(["privacy=dp_sgd", "privacy.target_epsilon=3"]).privacy
    assert on.enabled and on.dp_sgd() is on
    off = compose_config(["privacy=none"]).privacy
    assert not off.enabled and off.dp_sgd() is None


def test_the_strategies_that_need_each_update_are_the_robust_ones() -> None:
    per_update = {name for name, o in REGISTRY.options("strategy").items() if o.schema.aggregates_per_update}
    assert per_update == {"krum", "multikrum", "bulyan", "fedmedian", "fedtrimmedavg"}


@dataclass
class _ClippedMeanConfig(FedAvgConfig):
    """A strategy added later: it looks at each update, and says so itself."""

    aggregates_per_update: ClassVar[bool] = True
    name: str = "clippedmean"


def test_a_new_strategy_that_needs_each_update_is_refused_with_secure_aggregation() -> None:
    config = compose_config(["secure_aggregation=secagg_plus", "num_clients=5"])
    check_aggregation(config)
    with pytest.raises(ConfigError) as error:
        check_aggregation(replace(config, strategy=_ClippedMeanConfig()))
    assert str(error.value).startswith(
        "strategy must be a mean-based strategy (fedavg, fedprox, fedadam) with secure_aggregation=secagg_plus"
    )
    assert "got 'clippedmean'" in str(error.value)


@dataclass
class _TripleFeaturesConfig(FeaturesConfig):
    """A feature transform added later: three maps per channel, declared by the transform."""

    name: str = "triple"

    def maps_per_channel(self) -> int:
        return 3


def test_a_new_feature_transform_tells_the_model_rule_its_maps() -> None:
    config = compose_config(["features=scattering", "model=feature_linear", "model.groups=27"])
    assert config.features.maps_per_channel() == scattering_maps(2, 8) == 81
    assert ScatteringFeaturesConfig(J=3, orientations=4).maps_per_channel() == 1 + 3 * 4 + 16 * 3
    check_model_inputs(replace(config, features=_TripleFeaturesConfig(), model=FeatureLinearConfig(groups=3)))
    with pytest.raises(ConfigError, match=r"^model.groups must be a divisor of the 3 input maps that features=triple"):
        check_model_inputs(replace(config, features=_TripleFeaturesConfig()))
