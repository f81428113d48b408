"""Several worker processes on one study lose and duplicate no trial: journal file and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from aureon.automl.search import run_table_search
from aureon.automl.storage import open_study
from aureon.launch.run_config import compose_config

PG_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/lib/postgresql/16/bin", "/usr/bin")
FAST = ["dataset=wine", "automl.families=[linear,knn]", "automl.folds=3", "automl.live=false"]


def _pg_binary(name: str) -> str:
    for folder in PG_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:  # the test must fail, not skip: .ci/run installs Debian's postgresql
        pytest.fail(f"PostgreSQL's {name} not found in {PG_DIRS} or PATH; install the postgresql package")
    return found


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the 'postgres' user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server in a temporary data directory on a free loopback port."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="aureon-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    root.chmod(0o700)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _check_every_trial_once(results: dict, study_trials: list, *, n_trials: int, n_workers: int) -> None:
    numbers = sorted(t.number for t in study_trials)
    assert numbers == list(range(n_trials))  # none lost, none twice
    assert len({t._trial_id for t in study_trials}) == n_trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in study_trials)
    by_worker = {int(k): v for k, v in results["trials"]["by_worker"].items()}
    assert sorted(by_worker) == list(range(n_workers)) and sum(by_worker.values()) == n_trials
    recorded = {w: sum(t.user_attrs.get("worker") == w for t in study_trials) for w in range(n_workers)}
    assert recorded == by_worker  # each worker's count matches the trials the study holds from it
    assert all(count >= 1 for count in by_worker.values())  # every process took part


def test_four_workers_share_one_journal_file_study(tmp_path: Path) -> None:
    config = compose_config([*FAST, "automl.n_workers=4", "automl.n_trials=12", "automl.time_budget=240"])
    results = run_table_search(config, tmp_path)
    study = open_study(
        f"journal:{tmp_path / 'optuna_journal.log'}", study_name="aureon-automl", seed=0, pruner_startup_trials=0
    )
    _check_every_trial_once(results, study.get_trials(deepcopy=False), n_trials=12, n_workers=4)
    assert results["storage"].startswith("journal:")


def test_two_workers_share_one_postgresql_study(tmp_path: Path, postgres_url: str) -> None:
    overrides = [*FAST, "automl.n_workers=2", "automl.n_trials=6", "automl.time_budget=240"]
    config = compose_config([*overrides, f"automl.storage={postgres_url}", "automl.study_name=shared"])
    results = run_table_search(config, tmp_path)
    study = open_study(postgres_url, study_name="shared", seed=0, pruner_startup_trials=0)
    _check_every_trial_once(results, study.get_trials(deepcopy=False), n_trials=6, n_workers=2)
    assert results["storage"] == postgres_url
