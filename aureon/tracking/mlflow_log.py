"""Logging a run to MLflow tracking (``tracking.mlflow=<URI>``), beside its run directory.

Params are the resolved config flattened to dotted keys; every round's
accuracy, loss, epsilon and bytes are metrics at step = round; at the end
results.json, the plot, config.yaml and model.pt are artifacts. mlflow is
imported only when the option is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aureon.tracking.listeners import RunListener
from aureon.tracking.records import RoundRecord

MAX_PARAM_LENGTH = 500  # MLflow refuses longer parameter values


def flat_params(node: Any, prefix: str = "") -> dict[str, str]:
    """``{"a.b": "value"}`` for every scalar in a nested mapping."""
    out: dict[str, str] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(flat_params(value, f"{prefix}{key}."))
    else:
        out[prefix.rstrip(".")] = str(node)[:MAX_PARAM_LENGTH]
    return out


class MlflowListener(RunListener):
    """One MLflow run per AUREON run, fed by RunTracker."""

    def __init__(self, *, tracking_uri: str, experiment: str, run_name: str, params: dict[str, Any]) -> None:
        import mlflow

        self._mlflow = mlflow
        self.client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        self.run_id: str = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        flat = flat_params(params)
        items = list(flat.items())
        for start in range(0, len(items), 100):
            self.client.log_batch(
                self.run_id, params=[mlflow.entities.Param(k, v) for k, v in items[start : start + 100]]
            )

    def _metrics(self, values: dict[str, float | None], step: int) -> None:
        import time

        now = int(time.time() * 1000)
        metrics = [
            self._mlflow.entities.Metric(key, float(value), now, step)
            for key, value in values.items()
            if value is not None and value == value
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_initial(self, *, accuracy: float, loss: float) -> None:
        self._metrics({"test_accuracy": accuracy, "test_loss": loss}, 0)

    def on_round(self, *, record: RoundRecord) -> None:
        self._metrics(
            {
                "test_accuracy": record.test_accuracy,
                "test_loss": record.test_loss,
                "epsilon_max": record.epsilon_max,
                "bytes_up": float(record.bytes_up),
                "bytes_down": float(record.bytes_down),
                "clients": float(len(record.clients)),
                "failures": float(len(record.failures)),
                "rejected": float(len(record.rejected)),
                "round_seconds": record.seconds,
            },
            record.round,
        )

    def on_finish(self, *, results: dict[str, Any], run_dir: Path) -> None:
        for name in ("results.json", "config.yaml", "progress.png"):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        if (run_dir / "model.pt").is_file():
            self.client.log_artifact(self.run_id, str(run_dir / "model.pt"), artifact_path="model")
        self.client.set_terminated(self.run_id, status="FINISHED" if results.get("finished") else "FAILED")
