"""End to end in Flower's Simulation Engine (Ray): real ServerApp, ClientApps, Opacus."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aureon.launch.run_config import compose_config
from aureon.launch.simulation import run_experiment

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_two_client_dp_simulation_learns_and_writes_its_run_directory(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits", "num_clients=2", "num_rounds=2", "train.batch_size=32"])
    results = run_experiment(config, tmp_path)

    assert results["finished"] and results["rounds_completed"] == 2
    initial = results["initial"]["test_accuracy"]
    final = results["final"]["test_accuracy"]
    assert final > initial + 0.2, (initial, final)

    rounds = results["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    for record in rounds:
        # clients are known by node; AUREON's client labels its partition for readers
        assert len({c["node_id"] for c in record["clients"]}) == 2
        assert sorted(c["partition_id"] for c in record["clients"]) == [0, 1]
        assert sorted(record["epsilon_per_client"]) == ["0", "1"]
        assert all(c["bytes_up"] > 0 and c["bytes_down"] > 0 for c in record["clients"])
        assert record["seconds"] > 0
    assert results["privacy"]["clients_without_guarantee"] == []  # every client reported its epsilon
    eps_1, eps_2 = rounds[0]["epsilon_max"], rounds[1]["epsilon_max"]
    assert 0 < eps_1 < eps_2 <= config.privacy.target_epsilon * 1.01

    assert (tmp_path / "config.yaml").is_file()
    assert (tmp_path / "model.pt").is_file()
    assert (tmp_path / "progress.png").stat().st_size > 0
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "results.json").read_text()) == results


@pytest.mark.integration
def test_centralized_baseline_writes_the_same_outputs(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits", "strategy=centralized", "num_rounds=2", "train.batch_size=32"])
    results = run_experiment(config, tmp_path)
    assert results["mode"] == "centralized"
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"] + 0.2
    assert results["rounds"][-1]["epsilon_max"] <= config.privacy.target_epsilon * 1.01
    assert (tmp_path / "progress.png").is_file()


@pytest.mark.integration
def test_sweep_writes_one_run_per_combination_and_a_summary(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulations.run",
            "-m",
            "dataset=digits",
            "strategy=centralized",
            "num_rounds=1",
            "privacy.target_epsilon=1,4",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted(p.parent.name for p in tmp_path.glob("*/results.json"))
    assert len(runs) == 2
    with (tmp_path / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert {"privacy.target_epsilon=1", "privacy.target_epsilon=4"} == {
        next(o for o in row["overrides"].split() if o.startswith("privacy.")) for row in rows
    }
    eps = sorted(float(row["epsilon_max"]) for row in rows)
    assert eps[0] <= 1.01 and 3.5 < eps[1] <= 4.04
    assert all(0.0 < float(row["final_accuracy"]) <= 1.0 for row in rows)
    assert (tmp_path / "summary.md").read_text().count("\n") == 4


@pytest.mark.integration
def test_flwr_run_uses_the_same_apps_and_conf(tmp_path: Path) -> None:
    from aureon.launch.flwr_cli import stop_local_superlink, submit_run, wait_for_run

    flwr_home = tmp_path / "flwr-home"
    run_dir = tmp_path / "run"
    try:
        run_id = submit_run(
            REPO,
            flwr_home=flwr_home,
            overrides=["dataset=digits", "num_clients=2", "num_rounds=1", "privacy=none"],
            run_dir=run_dir,
            num_supernodes=2,
        )
        wait_for_run(run_id, flwr_home=flwr_home, cwd=REPO, timeout=300)
    finally:
        stop_local_superlink(flwr_home)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["finished"] and results["num_clients"] == 2
    assert results["privacy"] == {"kind": "none"}
    assert results["final"]["test_accuracy"] > results["initial"]["test_accuracy"]
