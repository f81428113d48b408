"""The audit of real federated runs: without DP it finds leakage, with DP at epsilon 2 it stays under 2.

The runs use the real ServerApp logic and ClientApp handlers over an in-process
grid (no Ray), on scikit-learn's digits with the small CNN, several local
epochs and 400 canaries; the two runs differ only in ``privacy``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aureon.federated.apps import make_client_app
from aureon.federated.server import run_server
from aureon.launch.run_config import compose_config
from aureon.privacy.canaries import RECORD_FILE
from aureon.privacy.canary_audit import audit_run, record_canaries, run_canaries
from tests.inprocess_grid import InProcessGrid

REPO = Path(__file__).resolve().parents[2]

# Pinned so that the default run's recipe may change without moving these figures.
MEMORIZING = [
    "dataset=digits",
    "features=none",
    "model=cnn",
    "num_clients=2",
    "num_rounds=3",
    "train.local_epochs=5",
    "train.batch_size=32",
    "train.lr=0.05",
    "train.momentum=0.9",
    "train.lr_decay=1.0",
    "audit.canaries=400",
]


def audited(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    config = compose_config(overrides)
    plan = run_canaries(config)
    record_canaries(run_dir, config, plan)
    app = make_client_app(lambda _ctx: config)
    results = run_server(
        InProcessGrid(app, num_nodes=config.num_clients, state_root=run_dir / "clients"), config, run_dir
    )
    return audit_run(config, run_dir, plan, results)


@pytest.mark.usefixtures("server_identity")
def test_no_dp_run_leaks_far_more_than_a_dp_run_at_epsilon_2(tmp_path: Path) -> None:
    logging.getLogger("flwr").setLevel(logging.ERROR)
    plain = audited([*MEMORIZING, "privacy=none"], tmp_path / "plain")
    private = audited([*MEMORIZING, "privacy=dp_sgd", "privacy.target_epsilon=2"], tmp_path / "dp")

    leak, kept = plain["audit"], private["audit"]
    assert leak["reported_epsilon"] is None and leak["guarantee"] == "none"
    assert (leak["canaries"], leak["guesses"], leak["confidence"]) == (400, 80, 0.95)
    assert leak["epsilon_lower_bound"] > 1.5  # the memorised canaries are found
    assert kept["reported_epsilon"] == pytest.approx(private["final"]["epsilon_max"])
    assert kept["epsilon_lower_bound"] <= kept["reported_epsilon"]
    assert kept["epsilon_lower_bound"] < leak["epsilon_lower_bound"] - 1.0
    assert kept["delta"] == private["privacy"]["delta"] == 1e-5
    # the same canaries and coins in both runs: the record is the auditor's, not the run's
    plain_record = json.loads((tmp_path / "plain" / RECORD_FILE).read_text())
    assert plain_record == json.loads((tmp_path / "dp" / RECORD_FILE).read_text())
    assert sum(plain_record["included"]) == leak["included"]


@pytest.mark.integration
def test_the_audit_command_prints_both_epsilons_and_writes_them(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulations.audit",
            "dataset=digits",
            "features=none",
            "model=cnn",
            "num_clients=2",
            "num_rounds=1",
            "train.batch_size=64",
            "audit.canaries=100",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    block = results["audit"]
    assert block["canaries"] == 100 and block["guesses"] == 20 and block["confidence"] == 0.95
    assert block["reported_epsilon"] == pytest.approx(results["final"]["epsilon_max"])
    assert block["epsilon_lower_bound"] <= block["reported_epsilon"]
    assert "empirical epsilon lower bound" in result.stdout and "reported epsilon" in result.stdout
    assert len(json.loads((tmp_path / RECORD_FILE).read_text())["included"]) == 100


def test_the_audit_command_refuses_a_run_without_canaries(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulations.audit", "dataset=digits", f"hydra.run.dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "audit.canaries must be >= 1" in result.stderr
