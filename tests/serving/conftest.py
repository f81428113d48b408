"""Run directories of tiny models trained for real on scikit-learn's digits, written as a run writes them."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import torch

from aureon.config import TrainConfig, to_yaml
from aureon.config.run import AureonConfig
from aureon.features import prepare_dataset
from aureon.launch.run_config import compose_config
from aureon.models import build_model
from aureon.training import train_model

CNN = ["dataset=digits", "features=none", "model=cnn", "privacy=none"]
SCATTERING = ["dataset=digits", "features=scattering", "model=feature_linear", "privacy=none"]


def write_run(run_dir: Path, overrides: list[str], *, epochs: int = 4) -> Path:
    """Train the configured model briefly on digits; write config.yaml, model.pt and results.json."""
    config: AureonConfig = compose_config(
        [*overrides, f"features.cache_dir={run_dir.parent / 'cache'}"]
        if "features=scattering" in overrides
        else overrides
    )
    data = prepare_dataset(config.dataset, config.seed, config.features)
    model = build_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
    train_model(
        model,
        data.x_train,
        data.y_train,
        config=TrainConfig(local_epochs=epochs, batch_size=32, lr=0.05, momentum=0.9),
        seed=0,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    (run_dir / "model.pt").write_bytes(buffer.getvalue())
    results = {
        "finished": True,
        "model_sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "final": {"round": 3, "test_accuracy": 0.9, "test_loss": 0.3, "epsilon_max": 1.5},
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


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
