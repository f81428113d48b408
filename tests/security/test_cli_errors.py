"""Commands fail with one ``error: ...`` line and exit code 2; --debug / AUREON_DEBUG=1 add the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aureon.cli import DEBUG_ENV, error_line, exit_on_error, run_cli, take_debug_flag
from aureon.exceptions import AureonError, DataError
from tests.security import samples

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start without AUREON_DEBUG and leave none behind (``--debug`` sets it in os.environ)."""
    monkeypatch.setenv(DEBUG_ENV, "")  # recorded, so teardown restores the variable's absence
    monkeypatch.delenv(DEBUG_ENV)


def _fails_with(error: BaseException) -> Callable[[list[str]], int]:
    """A command whose body raises ``error``."""

    def main(argv: list[str]) -> int:
        raise error

    return main


def test_expected_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    errors = (DataError("data/x: labels must be in [0, 10)\n  more detail"), FileNotFoundError(2, "No such file", "x"))
    for error in errors:
        assert run_cli(_fails_with(error), []) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err


def test_multi_line_message_is_folded_into_one() -> None:
    assert error_line(AureonError("first\n\n  second  \n")) == "error: first; second"


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        run_cli(_fails_with(ZeroDivisionError("bug")), [])


def test_success_returns_main_exit_code_without_the_debug_flag() -> None:
    seen: list[list[str]] = []

    def main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    assert run_cli(main, ["a=1", "--debug", "b=2"]) == 0
    assert seen == [["a=1", "b=2"]]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_prints_the_traceback_above_the_line(
    how: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["--debug"] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv(DEBUG_ENV, "1")
    assert run_cli(_fails_with(DataError("x: broken")), argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().endswith("error: x: broken")


def test_take_debug_flag_sets_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["prog", "--debug", "k=v"]
    assert take_debug_flag(argv) and argv == ["prog", "k=v"] and os.environ[DEBUG_ENV] == "1"
    assert not take_debug_flag(["prog"])


def test_exit_on_error_raises_system_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        exit_on_error(lambda: (_ for _ in ()).throw(DataError("x: broken")))
    assert stop.value.code == 2 and capsys.readouterr().err == "error: x: broken\n"
    assert exit_on_error(lambda: 7) == 7


def _resume(run_dir: Path, tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m simulations.run resume=<run_dir>`` as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "simulations.run", "dataset=digits", f"resume={run_dir}",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "AUREON_DEBUG": "0", **(env or {})},
    )


@pytest.fixture()
def corrupted_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.npz").write_bytes(samples.checkpoint_bytes()[:-40])
    return run_dir


def test_simulation_resume_from_corrupted_checkpoint_is_one_line_exit_2(
    corrupted_run: Path, tmp_path: Path
) -> None:
    result = _resume(corrupted_run, tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: checkpoint {corrupted_run / 'checkpoint.npz'}: not a readable")
    assert "Traceback" not in result.stderr + result.stdout


def test_simulation_debug_shows_the_traceback(corrupted_run: Path, tmp_path: Path) -> None:
    """AUREON_DEBUG=1 (``--debug`` becomes it: test_take_debug_flag_sets_the_environment)."""
    result = _resume(corrupted_run, tmp_path, env={"AUREON_DEBUG": "1"})
    assert result.returncode == 2, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: checkpoint ")


def test_simulation_resume_from_a_folder_without_checkpoint_stops_before_imports(tmp_path: Path) -> None:
    """A mistyped resume path is named before torch, Flower or Ray load (about a second)."""
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    result = _resume(empty, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: resume must be the directory of a run that completed at least one round "
        f"(one holding checkpoint.npz), got '{empty}' (set in conf/ or on the command line)"
    )
    assert not (tmp_path / "hydra").exists()
