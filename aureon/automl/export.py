"""The best pipeline on disk without pickle: skops for scikit-learn, a state_dict for the torch MLP.

``best_pipeline.skops`` holds the fitted Pipeline (for the MLP: its
preprocessing only), loaded back with an explicit list of trusted types: a
file naming any other type is refused. The MLP's weights go to
``best_mlp.pt`` (a plain state_dict, read with ``weights_only=True``) and its
architecture to ``best_pipeline.json``, which also records the task, the
columns and the checksums of both files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline

from aureon.exceptions import ModelFileError
from aureon.files import atomic_write_bytes

PIPELINE_FILE = "best_pipeline.skops"
MLP_FILE = "best_mlp.pt"
META_FILE = "best_pipeline.json"

# Types skops does not trust by default that the supported families' pipelines hold, and nothing else.
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_pipeline(pipeline: Pipeline, folder: Path, *, meta: dict[str, Any]) -> list[Path]:
    """Write the fitted ``pipeline`` into ``folder``; ``meta`` (task, columns, ...) joins the JSON."""
    import skops.io as sio

    from aureon.automl.mlp import TorchMLP

    folder = Path(folder)
    model = pipeline.steps[-1][1]
    record: dict[str, Any] = {**meta, "format": 1, "trusted_types": list(TRUSTED_TYPES)}
    written = []
    if isinstance(model, TorchMLP):
        import io

        import torch

        saved: Pipeline = Pipeline(pipeline.steps[:-1])
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.network_.state_dict().items()}, buffer)
        atomic_write_bytes(folder / MLP_FILE, buffer.getvalue())
        record["mlp"] = {"file": MLP_FILE, "params": model.get_params(), "architecture": model.architecture()}
        record["mlp"]["sha256"] = _sha256(folder / MLP_FILE)
        written.append(folder / MLP_FILE)
    else:
        saved = pipeline
    data = sio.dumps(saved)
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise ModelFileError(f"the best pipeline holds types outside the trusted list {untrusted}; not saved")
    atomic_write_bytes(folder / PIPELINE_FILE, data)
    record["pipeline"] = {"file": PIPELINE_FILE, "sha256": _sha256(folder / PIPELINE_FILE)}
    atomic_write_bytes(folder / META_FILE, json.dumps(record, indent=2, default=str).encode())
    return [folder / PIPELINE_FILE, *written, folder / META_FILE]


def load_pipeline(folder: Path) -> Pipeline:
    """The fitted Pipeline saved in ``folder``; checksums and trusted types checked first."""
    import skops.io as sio

    folder = Path(folder)
    meta_path = folder / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{meta_path}: not a readable pipeline description ({error})") from error
    path = folder / meta["pipeline"]["file"]
    _check(path, meta["pipeline"]["sha256"])
    untrusted = set(sio.get_untrusted_types(file=path))
    refused = sorted(untrusted - set(TRUSTED_TYPES))
    if refused:
        raise ModelFileError(f"{path}: holds types outside the trusted list: {refused}")
    pipeline = sio.load(path, trusted=sorted(untrusted))
    if "mlp" in meta:
        import torch

        from aureon.automl.mlp import TorchMLP

        weights = folder / meta["mlp"]["file"]
        _check(weights, meta["mlp"]["sha256"])
        state = torch.load(weights, weights_only=True, map_location="cpu")
        mlp = TorchMLP(**meta["mlp"]["params"]).load_network(meta["mlp"]["architecture"], state)
        pipeline = Pipeline([*pipeline.steps, ("model", mlp)])
    if not isinstance(pipeline, Pipeline):
        raise ModelFileError(f"{path}: holds a {type(pipeline).__name__}, expected a scikit-learn Pipeline")
    return pipeline


def _check(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ModelFileError(f"{path}: missing (named by {META_FILE})")
    if _sha256(path) != expected:
        raise ModelFileError(f"{path}: checksum does not match {META_FILE}; the file was changed or damaged")
