"""Run directories of tiny models trained for real on scikit-learn's digits, written as a run writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon.config.run import AureonConfig
from aureon.launch.run_config import compose_config
from tests.serving.serving_helpers import write_trained_run

CNN = ["dataset=digits", "features=none", "model=cnn", "privacy=none"]
SCATTERING = ["dataset=digits", "features=scattering", "model=feature_linear", "privacy=none"]


def write_run(run_dir: Path, overrides: list[str], *, epochs: int = 4) -> Path:
    """Train the configured model briefly on digits; write config.yaml, model.pt and results.json."""
    config: AureonConfig = compose_config(
        [*overrides, f"features.cache_dir={run_dir.parent / 'cache'}"]
        if "features=scattering" in overrides
        else overrides
    )
    final = {"round": 3, "test_accuracy": 0.9, "test_loss": 0.3, "epsilon_max": 1.5}
    return write_trained_run(run_dir, config, epochs=epochs, final=final)


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("serving") / "cnn", CNN)


@pytest.fixture(scope="session")
def scattering_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("serving") / "scattering", SCATTERING)


@pytest.fixture(scope="session")
def quantized_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CNN run with its static int8 model (``simulations.compress method=quantize``)."""
    from aureon.config import ModelCompressionJob
    from aureon.model_compression import compress_run

    run_dir = write_run(tmp_path_factory.mktemp("serving") / "int8", CNN)
    compress_run(ModelCompressionJob(run_dir=str(run_dir), method="quantize", latency_rounds=1))
    return run_dir
