"""The client operator's commands: the privacy floor on the command line, ledger show and reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon.cli import run_cli
from aureon.exceptions import ConfigError
from aureon.launch.deploy import refuse_reproducible_noise
from aureon.launch.run_config import compose_config
from aureon.privacy.ledger import LEDGER_FILE, LedgerEntry, LedgerStore, PrivacyLedger
from clients.__main__ import main as clients_main


def _spent(state_dir: Path) -> None:
    entry = LedgerEntry(run="r", round=1, noise_multiplier=1.0, sample_rate=0.02, steps=50)
    LedgerStore(state_dir).save(PrivacyLedger(data="builtin:digits", entries=[entry]))


def test_ledger_show_and_reset_say_what_they_forget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _spent(tmp_path)
    assert run_cli(clients_main, ["ledger", "show", "--state-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "builtin:digits: epsilon" in shown and "over 1 rounds of 1 runs" in shown
    assert run_cli(clients_main, ["ledger", "reset", "--state-dir", str(tmp_path)]) == 0
    assert "forgot builtin:digits: epsilon" in capsys.readouterr().out
    assert LedgerStore(tmp_path).load("builtin:digits").entries == []


def test_a_lost_ledger_stops_show_but_an_explicit_reset_starts_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _spent(tmp_path)
    (tmp_path / LEDGER_FILE).unlink()
    assert run_cli(clients_main, ["ledger", "show", "--state-dir", str(tmp_path)]) == 2
    assert "refusing to restart" in capsys.readouterr().err
    assert run_cli(clients_main, ["ledger", "reset", "--state-dir", str(tmp_path)]) == 0
    assert "nothing readable to forget" in capsys.readouterr().out
    assert LedgerStore(tmp_path).load("builtin:digits").entries == []


@pytest.mark.parametrize(
    ("flag", "named"), [("--max-epsilon=inf", "--max-epsilon"), ("--max-delta=0.5e1", "--max-delta")]
)
def test_a_meaningless_floor_is_one_line_exit_2(
    flag: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--partition-id", "0", "--num-partitions", "1", "--server", "127.0.0.1:1", flag]
    assert run_cli(clients_main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {named} must be") and err.count("\n") == 1


def test_deployment_refuses_reproducible_noise_naming_the_key() -> None:
    refuse_reproducible_noise(compose_config(["dataset=digits"]))
    with pytest.raises(ConfigError, match="privacy.reproducible_noise=true"):
        refuse_reproducible_noise(compose_config(["dataset=digits", "privacy.reproducible_noise=true"]))
