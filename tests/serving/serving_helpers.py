"""Run directories of briefly trained models, and serving one on a free loopback port for a test."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from aureon.config import TrainConfig, to_yaml
from aureon.config.run import AureonConfig
from aureon.config.serving import ServingConfig
from aureon.features import prepare_dataset
from aureon.models import build_model
from aureon.serving.app import build_app
from aureon.serving.loading import ServedModel
from aureon.serving.server import BackgroundServer
from aureon.training import train_model


def serve(model: ServedModel, config: ServingConfig) -> Iterator[str]:
    """Yield the base URL of ``model`` served with ``config``; a generator, so fixtures ``yield from`` it."""
    server = BackgroundServer(build_app(model, config), host="127.0.0.1", port=0).start()
    try:
        yield server.url.rstrip("/")
    finally:
        server.stop()


def write_trained_run(run_dir: Path, config: AureonConfig, *, epochs: int, final: dict[str, Any]) -> Path:
    """Train ``config``'s model briefly on its dataset and write config.yaml, model.pt and results.json.

    What a finished run leaves for serving, with the model's real checksum;
    ``final`` is results.json's summary of the last round.
    """
    data = prepare_dataset(config.dataset, config.seed, config.features)
    model = build_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
    train_model(
        model,
        data.x_train,
        data.y_train,
        config=TrainConfig(local_epochs=epochs, batch_size=32, lr=0.05, momentum=0.9),
        seed=0,
        criterion=data.objective().criterion(),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    (run_dir / "model.pt").write_bytes(buffer.getvalue())
    results = {"finished": True, "model_sha256": hashlib.sha256(buffer.getvalue()).hexdigest(), "final": final}
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir
