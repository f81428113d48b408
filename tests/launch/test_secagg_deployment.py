"""Secure aggregation in deployment mode: `python -m server` and three SuperNodes over TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon.launch.certs import generate_certs
from tests.launch.deployment import Deployment, read_results, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.deployment]

RUN = [
    "dataset=digits",
    "features=none",
    "model=logreg",
    "privacy=none",
    "num_clients=3",
    "num_rounds=2",
    "deployment.round_timeout=60",
    "secure_aggregation=secagg_plus",
]


def test_secagg_rounds_complete_across_processes(tmp_path: Path) -> None:
    certs = generate_certs(out=tmp_path / "certs", hosts=["127.0.0.1", "localhost"], nodes=3)
    deployment = Deployment(tmp_path, certs)
    run_dir = tmp_path / "run"
    try:
        server = deployment.start_server(RUN, run_dir=run_dir)
        for index in range(3):
            deployment.start_client(index, key=certs.node(index).private_key)
        wait_until(lambda: not server.alive(), timeout=600, what="the server to finish the run")
        results = read_results(run_dir)
        assert server.popen.returncode == 0 and results is not None, deployment.log_text()
    finally:
        deployment.close([run_dir])
    assert results["finished"] and results["secure_aggregation"] == "secagg_plus"
    for record in results["rounds"]:
        assert record["aggregation_error"] is None, record["aggregation_error"]
        assert len(record["clients"]) == 3 and record["rejected"] == []
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.5
