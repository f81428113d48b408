"""Config composition for every group, and clear errors for bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import ConfigKeyError, ValidationError

from aureon.config import GROUPS, AureonConfig, TrainConfig, register_configs, to_typed
from aureon.exceptions import AureonError, ConfigError
from aureon.launch.run_config import compose_config, config_from_run_config

REPO = Path(__file__).resolve().parents[1]


# Bulyan tolerates f Byzantine clients only with >= 4f + 3 of them (f = 1 by default)
NEEDS_MORE_CLIENTS = {
    ("strategy", "bulyan"): ["num_clients=7"],
    ("model", "feature_linear"): ["features=scattering"],  # it needs feature maps
}


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g, options in GROUPS.items() for o in options if (g, o) != ("dataset", "mnist")],
)
def test_every_group_option_composes_to_its_schema(group: str, option: str) -> None:
    config = compose_config([f"{group}={option}", *NEEDS_MORE_CLIENTS.get((group, option), [])])
    assert isinstance(config, AureonConfig)
    assert isinstance(getattr(config, group), GROUPS[group][option])


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
    assert (TrainConfig().batch_size, TrainConfig().lr, TrainConfig().momentum) == (32, 0.05, 0.9)


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


def test_cli_stops_before_training_with_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulations.run", "num_clients=0", f"hydra.run.dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "error: num_clients must be an integer >= 1, got 0" in result.stderr
    assert not (tmp_path / "results.json").exists()
