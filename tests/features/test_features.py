"""The scattering features: shape, no dependence on other examples, disk cache, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aureon.config import ScatteringFeaturesConfig, scattering_maps
from aureon.exceptions import ConfigError
from aureon.features import prepare_dataset
from aureon.features.scattering import scattering_features
from aureon.launch.run_config import compose_config
from aureon.models import build_model


def _scattering(cache_dir: Path, **settings: int) -> ScatteringFeaturesConfig:
    return ScatteringFeaturesConfig(cache_dir=str(cache_dir), **settings)


def test_maps_count_and_size_follow_J_and_orientations() -> None:
    images = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    maps = scattering_features(images, J=2, orientations=8)
    assert maps.shape == (3, scattering_maps(2, 8), 7, 7) == (3, 81, 7, 7)
    assert maps.dtype == np.float32
    assert scattering_features(images, J=1, orientations=4).shape == (3, 5, 14, 14)


def test_an_example_s_features_do_not_depend_on_the_others() -> None:
    """A fixed transform learns nothing from the data, so it spends no privacy budget."""
    images = np.random.default_rng(1).normal(size=(6, 1, 8, 8)).astype(np.float32)
    together = scattering_features(images, J=2, orientations=8)
    alone = np.concatenate([scattering_features(images[i : i + 1], J=2, orientations=8)
                            for i in range(6)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_prepared_dataset_is_cached_on_disk_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = compose_config(["dataset=digits", "features=scattering",
                             f"features.cache_dir={tmp_path}"])
    first = prepare_dataset(config.dataset, config.seed, config.features)
    assert first.x_train.shape[1:] == (81, 2, 2) == first.input_shape
    assert len(first.x_train) == len(first.y_train)
    assert sorted(p.suffix for p in tmp_path.glob("*.npy")) == [".npy", ".npy"]

    def recompute(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("features were recomputed although they are on disk")

    monkeypatch.setattr("aureon.features.prepare.scattering_features", recompute)
    monkeypatch.setattr("aureon.features.prepare._PREPARED", {})
    again = prepare_dataset(config.dataset, config.seed, config.features)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.x_test, again.x_test)


def test_other_settings_get_their_own_cache_entry(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits"])
    coarse = prepare_dataset(config.dataset, config.seed, _scattering(tmp_path, J=1))
    fine = prepare_dataset(config.dataset, config.seed, _scattering(tmp_path, J=2))
    assert coarse.input_shape == (9, 4, 4) and fine.input_shape == (81, 2, 2)
    assert len(list(tmp_path.glob("*.train.npy"))) == 2


def test_J_too_large_for_the_image_is_refused_with_the_key(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits"])
    with pytest.raises(ConfigError, match=r"features.J must .* got J=4 for 8x8 images"):
        prepare_dataset(config.dataset, config.seed, _scattering(tmp_path, J=4))


def test_feature_linear_without_feature_maps_is_refused_at_composition() -> None:
    with pytest.raises(ConfigError, match=r"^model.groups must be a divisor of the 1 input maps"):
        compose_config(["model=feature_linear"])
    with pytest.raises(ConfigError, match=r"got 4"):
        compose_config(["features=scattering", "model=feature_linear", "model.groups=4"])


def test_feature_linear_builds_for_scattering_maps() -> None:
    config = compose_config(["features=scattering", "model=feature_linear"])
    model = build_model(config.model, input_shape=(81, 7, 7), num_classes=10, seed=0)
    assert sum(p.numel() for p in model.parameters()) == 81 * 49 * 10 + 10


@pytest.mark.integration
def test_dp_federated_run_on_scattering_features_learns(tmp_path: Path) -> None:
    from aureon.launch.simulation import run_experiment

    config = compose_config(["dataset=digits", "features=scattering", "model=feature_linear",
                             f"features.cache_dir={tmp_path / 'cache'}", "num_clients=2",
                             "num_rounds=2"])
    results = run_experiment(config, tmp_path / "run")
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.3
    assert 0 < results["rounds"][-1]["epsilon_max"] <= config.privacy.target_epsilon * 1.01
