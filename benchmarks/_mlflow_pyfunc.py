"""An AUREON run as an MLflow pyfunc model, so that ``mlflow models serve`` answers with the same model.

The pyfunc does what AUREON's server does per request, minus the batching:
the run's feature transform and forward pass over the posted rows, with the
same torch thread count, answering class probabilities.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

RUN_FILES = ("config.yaml", "model.pt", "results.json")


class AureonPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the run with AUREON's own loader; predicts (n, C*H*W) standardised rows."""

    def __init__(self, *, torch_threads: int = 1) -> None:
        self.torch_threads = torch_threads

    def load_context(self, context: Any) -> None:
        import torch

        from aureon.serving.loading import load_served_model

        torch.set_num_threads(self.torch_threads)
        self.model = load_served_model(context.artifacts["run_dir"])

    def predict(self, context: Any, model_input: Any, params: Any = None) -> np.ndarray:
        from aureon.serving.inputs import softmax

        rows = np.asarray(model_input, dtype=np.float32)
        images = rows.reshape(len(rows), *self.model.info.image_shape)
        return softmax(self.model.logits(images))


def save_pyfunc(run_dir: Path, target: Path, *, torch_threads: int = 1) -> Path:
    """``target``: an MLflow model folder wrapping the run's model (rewritten if there)."""
    if target.exists():
        shutil.rmtree(target)
    staged = target.parent / f"{target.name}-run"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    for name in RUN_FILES:
        shutil.copy2(run_dir / name, staged / name)
    mlflow.pyfunc.save_model(
        path=str(target), python_model=AureonPyfunc(torch_threads=torch_threads), artifacts={"run_dir": str(staged)}
    )
    shutil.rmtree(staged)
    return target
