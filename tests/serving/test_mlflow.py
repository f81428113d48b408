"""tracking.mlflow=<URI>: a run's params, per-round metrics and files read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon.launch.run_config import compose_config
from aureon.launch.simulation import run_experiment


@pytest.mark.integration
def test_a_run_logged_to_mlflow_reads_back(tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = compose_config(
        ["dataset=digits", "strategy=centralized", "privacy=none", "num_rounds=2", f"tracking.mlflow={uri}"]
    )
    results = run_experiment(config, tmp_path / "run")
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("aureon")
    (run,) = client.search_runs([experiment.experiment_id])
    mlflow.set_tracking_uri(uri)
    read = mlflow.get_run(run.info.run_id)
    assert read.info.status == "FINISHED"
    assert read.data.params["dataset.name"] == "digits" and read.data.params["num_rounds"] == "2"
    history = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert [m.step for m in history] == [0, 1, 2]
    assert history[-1].value == pytest.approx(results["final"]["test_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "config.yaml", "progress.png", "model"} <= artifacts
