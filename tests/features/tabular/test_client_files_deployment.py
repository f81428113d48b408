"""Per-client tables for real: `python -m server` and three SuperNodes on loopback, each with its own CSV.

The server holds no rows (``dataset.per_client=true``, no ``dataset.path``);
each client is started with ``data.path=<its file>`` as ``python -m clients``
passes it. The run must finish, the pipeline in the run directory must equal
the one fitted on the pooled training rows, and the clients' held-out
accuracy must beat chance.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aureon.config.features import TabularFeaturesConfig
from aureon.features.tabular.federation import LocalFederation
from aureon.features.tabular.fit import Columns, fit_pipeline
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.features.tabular.prepare import PIPELINE_DIR
from aureon.launch.certs import generate_certs
from aureon.launch.processes import free_port
from aureon.launch.run_config import compose_config
from aureon.launch.supernode import SuperNodeSpec, start_supernode
from aureon.privacy.floor import PrivacyFloor
from clients.__main__ import _override
from tests.features.tabular.client_files import ONLY_ON_CLIENT_0, pooled, training_tables, write_client_files
from tests.launch.deployment import Deployment, read_results, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.deployment]

RUN = [
    "dataset=table",
    "dataset.per_client=true",
    "dataset.target=label",
    "features=standardize",
    "model=logreg",
    "privacy=none",
    "num_clients=3",
    "num_rounds=3",
    "seed=5",
    "deployment.round_timeout=90",
]
RUN_TIMEOUT = 400


def _start_client(deployed: Deployment, index: int, path: Path) -> None:
    """A SuperNode as `python -m clients --allow-no-dp ... data.path=<path>` starts it."""
    spec = SuperNodeSpec(
        superlink=f"127.0.0.1:{deployed.port}",
        partition_id=index,
        num_partitions=3,
        flwr_home=deployed.root / f"client-home-{index}",
        state_dir=deployed.root / f"client-state-{index}",
        clientappio_port=free_port(),
        root_certificates=deployed.certs.ca_cert,
        private_key=deployed.certs.node(index).private_key,
        trusted_entities=deployed.certs.trusted_entities,
        overrides=[_override(f"data.path={path}")],
        privacy_floor=PrivacyFloor(require_dp=False, max_epsilon=8.0, deployment=True).node_config(),
    )
    deployed.processes.append(start_supernode(spec, cwd=deployed.root))


def test_three_clients_with_their_own_files_fit_the_features_and_learn(tmp_path: Path) -> None:
    certs = generate_certs(out=tmp_path / "certs", hosts=["127.0.0.1", "localhost"], nodes=3)
    paths = write_client_files(tmp_path / "data", clients=3)
    deployed = Deployment(tmp_path, certs)
    run_dir = tmp_path / "run"
    try:
        deployed.start_server(RUN, run_dir=run_dir)
        for index, path in enumerate(paths):
            _start_client(deployed, index, path)
        server = deployed.server
        assert server is not None
        try:
            wait_until(lambda: not server.alive(), timeout=RUN_TIMEOUT, what="the server to finish the run")
        except TimeoutError:
            pytest.fail(f"run did not finish in {RUN_TIMEOUT} s\n{deployed.log_text()}")
        results = read_results(run_dir)
        assert server.popen.returncode == 0 and results is not None, deployed.log_text()
    finally:
        deployed.close([run_dir])

    assert results["finished"] and results["rounds_completed"] == 3
    assert [len(r["clients"]) for r in results["rounds"]] == [3, 3, 3]
    assert results["final"]["test_accuracy"] > 0.8, results["final"]  # chance (the majority class) is 0.63
    assert results["privacy"]["feature_statistics"]["mode"] == "federated"

    config = compose_config(RUN)
    features = config.features
    assert isinstance(features, TabularFeaturesConfig)
    one = pooled(training_tables(paths, seed=config.seed))
    centralized = fit_pipeline(
        replace(features, centralized=True),
        Columns(one.numeric, one.categorical, one.task),
        LocalFederation([one]),
        seed=config.seed,
    )
    saved = FittedPipeline.load(run_dir / PIPELINE_DIR)
    for name in ("impute", "offset", "scale"):
        np.testing.assert_allclose(getattr(saved, name), getattr(centralized, name), rtol=1e-12, atol=0)
    site = set(saved.vocabularies["site"])
    assert {"north", "south", "east"} <= site and ONLY_ON_CLIENT_0 not in site
    assert saved.classes == ("0", "1")
