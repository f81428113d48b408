"""What a run may print: quiet by default, everything with verbose=true."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from aureon.launch.processes import quiet_flower_env
from aureon.launch.quiet import (
    QUIET_FLOWER_ENV,
    SIMULATION_ENV,
    quiet_console,
    quiet_flower,
    quiet_warnings,
    ray_log_args,
    set_simulation_env,
)


@pytest.fixture()
def root_handlers(tmp_path: Path) -> Iterator[tuple[logging.Handler, logging.Handler]]:
    """A console handler and a file handler on the root logger, as Hydra's job logging sets up."""
    console, log_file = logging.StreamHandler(), logging.FileHandler(tmp_path / "run.log")
    root = logging.getLogger()
    root.addHandler(console)
    root.addHandler(log_file)
    yield console, log_file
    root.removeHandler(console)
    root.removeHandler(log_file)
    log_file.close()


def test_quiet_console_turns_down_the_terminal_but_not_the_log_file(
    root_handlers: tuple[logging.Handler, logging.Handler],
) -> None:
    console, log_file = root_handlers
    quiet_console(verbose=False)
    assert console.level == logging.WARNING
    assert log_file.level == logging.NOTSET
    quiet_console(verbose=True)
    assert console.level == logging.NOTSET


def test_flower_keeps_errors_only_unless_verbose() -> None:
    logger = logging.getLogger("flwr")
    before = (logger.level, logger.propagate)
    try:
        quiet_flower(verbose=False)
        assert not logger.isEnabledFor(logging.WARNING) and logger.isEnabledFor(logging.ERROR)
        assert logger.propagate is False
        quiet_flower(verbose=True)
        assert logger.isEnabledFor(logging.DEBUG)
    finally:
        logger.setLevel(before[0])
        logger.propagate = before[1]


def test_flower_settings_reach_this_process_and_started_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SIMULATION_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_DEDUP_LOGS", "1")  # a user's own choice is kept
    set_simulation_env()
    assert {name: os.environ[name] for name in QUIET_FLOWER_ENV} == QUIET_FLOWER_ENV
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0" and os.environ["RAY_DEDUP_LOGS"] == "1"
    env = quiet_flower_env(tmp_path, base={})
    assert {name: env[name] for name in QUIET_FLOWER_ENV} == QUIET_FLOWER_ENV
    assert env["FLWR_HOME"] == str(tmp_path)


def test_third_party_warnings_hidden_ours_shown() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_warnings(verbose=False)
        warnings.warn_explicit("alpha range", UserWarning, "rdp.py", 1, module="opacus.accountants.analysis.rdp")
        warnings.warn_explicit("our own", UserWarning, "x.py", 1, module="aureon.privacy.accounting")
    assert [str(w.message) for w in seen] == ["our own"]


def test_ray_prints_its_startup_and_actor_output_only_when_verbose() -> None:
    assert ray_log_args(verbose=False) == {"logging_level": logging.ERROR, "log_to_driver": False}
    assert ray_log_args(verbose=True) == {"logging_level": logging.INFO, "log_to_driver": True}
