"""A bad config is one ``error:`` line and exit code 2, found before torch, Flower or Ray load.

The commands run as a user runs them (subprocesses). The import check runs the
entry point inside a child interpreter and reads that child's ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "flwr", "ray", "opacus", "optuna")

# Runs ``python -m <module> <args>`` in this interpreter, then prints its exit code and
# the top-level packages it imported, as JSON on the last line of stdout.
_CHILD = """
import json, runpy, sys
module, args = sys.argv[1], sys.argv[2:]
sys.argv = [module, *args]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("AUREON_DEBUG", "HYDRA_FULL_ERROR")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120
    )


def _in_process(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"code": report["code"], "imported": [name for name in HEAVY if name in report["modules"]]}


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_bad_value_is_one_line_naming_the_key(tmp_path: Path) -> None:
    done = _command("simulations.run", "num_clients=0", f"hydra.run.dir={tmp_path}")
    line = _one_error_line(done)
    assert "num_clients" in line and "got 0" in line
    assert done.stdout == ""


def test_a_bad_value_is_found_before_torch_flower_or_ray_load(tmp_path: Path) -> None:
    child = _in_process("simulations.run", "privacy.target_epsilon=-1", f"hydra.run.dir={tmp_path}")
    assert child == {"code": 2, "imported": []}


@pytest.mark.parametrize(
    ("override", "named", "absent"),
    [
        ("model=resnet9000", "model/resnet9000", "schema_"),  # an unknown group option lists the real ones
        ("num_rounds=many", "num_rounds", "object_type"),  # a value of the wrong type names the key
        ("privacy.target_epsilom=1", "target_epsilom", "+privacy"),  # a typo, with no advice to append it
        ("num_clients=[1", "num_clients=[1", "hydra.cc"),  # override syntax
    ],
)
def test_hydra_composition_errors_are_one_line_and_exit_2(
    tmp_path: Path, override: str, named: str, absent: str
) -> None:
    line = _one_error_line(_command("simulations.run", override, f"hydra.run.dir={tmp_path}"))
    assert named in line
    assert absent not in line
    if override.startswith("model="):
        assert "cnn" in line and "feature_linear" in line


def test_debug_adds_the_traceback_and_keeps_exit_2(tmp_path: Path) -> None:
    done = _command("simulations.run", "--debug", "model=resnet9000", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "MissingConfigException" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: ")


def test_server_and_compress_validate_before_heavy_imports(tmp_path: Path) -> None:
    server = _in_process("server", "--insecure", "--run-dir", str(tmp_path / "run"), "num_clients=0")
    assert server == {"code": 2, "imported": []}
    compress = _in_process("simulations.compress", f"run_dir={tmp_path}", "method=shrink")
    assert compress == {"code": 2, "imported": []}


def test_a_bad_client_flag_is_found_before_torch_flower_or_opacus_load() -> None:
    """``python -m clients`` checks its privacy floor first: importing Opacus took ~9 s before."""
    flags = ("clients", "--partition-id", "0", "--num-partitions", "1", "--server", "127.0.0.1:1")
    line = _one_error_line(_command(*flags, "--max-epsilon", "-1"))
    assert "--max-epsilon" in line and "got -1.0" in line
    assert _in_process(*flags, "--max-delta", "2") == {"code": 2, "imported": []}
