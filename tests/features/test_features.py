"""Scattering features with the model made for them: config checks, and a DP run that learns."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon.config import ScatteringFeaturesConfig
from aureon.exceptions import ConfigError
from aureon.features import prepare_dataset
from aureon.launch.run_config import compose_config
from aureon.models import build_model


def test_J_too_large_for_the_image_is_refused_with_the_key(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits"])
    features = ScatteringFeaturesConfig(cache_dir=str(tmp_path), J=4)
    with pytest.raises(ConfigError, match=r"features.J must .* got J=4 for 8x8 images"):
        prepare_dataset(config.dataset, config.seed, features)


def test_feature_linear_without_feature_maps_is_refused_at_composition() -> None:
    with pytest.raises(ConfigError, match=r"^model.groups must be a divisor of the 1 input maps"):
        compose_config(["model=feature_linear", "features=none"])
    with pytest.raises(ConfigError, match=r"got 4"):
        compose_config(["features=scattering", "model=feature_linear", "model.groups=4"])


def test_feature_linear_builds_for_scattering_maps() -> None:
    config = compose_config(["features=scattering", "model=feature_linear"])
    model = build_model(config.model, input_shape=(81, 7, 7), num_classes=10, seed=0)
    assert sum(p.numel() for p in model.parameters()) == 81 * 49 * 10 + 10


@pytest.mark.integration
def test_dp_federated_run_on_scattering_features_learns(tmp_path: Path) -> None:
    from aureon.launch.simulation import run_experiment

    config = compose_config(
        [
            "dataset=digits",
            "features=scattering",
            "model=feature_linear",
            f"features.cache_dir={tmp_path / 'cache'}",
            "num_clients=2",
            "num_rounds=2",
        ]
    )
    results = run_experiment(config, tmp_path / "run")
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.3
    assert 0 < results["rounds"][-1]["epsilon_max"] <= config.privacy.target_epsilon * 1.01
