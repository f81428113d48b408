"""What the simulation benchmarks share: the MNIST argument and one timed AUREON run."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist"
PRESET = "+experiment=mnist_dp"


def default_mnist_path() -> str | None:
    """$AUREON_MNIST_PATH, else ../shared/data/mnist beside the repo if it exists."""
    from_env = os.environ.get("AUREON_MNIST_PATH")
    if from_env:
        return from_env
    return str(DEFAULT_MNIST) if DEFAULT_MNIST.is_dir() else None


def add_mnist_argument(parser: argparse.ArgumentParser) -> None:
    """``--mnist-path``: the folder of MNIST's four IDX files (gzipped or not)."""
    parser.add_argument(
        "--mnist-path",
        type=Path,
        default=DEFAULT_MNIST,
        help="folder holding MNIST's IDX files (default: ../shared/data/mnist from the repo root)",
    )


def mnist_overrides(path: Path) -> list[str]:
    """Hydra overrides that select full MNIST from ``path``."""
    return ["dataset=mnist", f"dataset.path={Path(path).expanduser().resolve()}"]


def run_aureon(overrides: Sequence[str]) -> dict[str, Any]:
    """Compose conf/ with ``overrides``, run it, and add the wall time to results.json's figures.

    Each run gets a throwaway run directory: the benchmark keeps only its figures.
    """
    from aureon.launch.run_config import compose_config
    from aureon.launch.simulation import run_experiment

    config = compose_config(list(overrides))
    with tempfile.TemporaryDirectory(prefix="aureon-bench-") as run_dir:
        started = time.monotonic()
        results = run_experiment(config, Path(run_dir))
        results["wall_seconds"] = time.monotonic() - started
    results["overrides"] = list(overrides)
    return results


def round_figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per round: test accuracy, epsilon spent (max over clients), bytes each way, seconds."""
    return [
        {
            "round": r["round"],
            "test_accuracy": r["test_accuracy"],
            "epsilon": r["epsilon_max"],
            "bytes_up": r["bytes_up_total"],
            "bytes_down": r["bytes_down_total"],
            "seconds": r["seconds"],
        }
        for r in results["rounds"]
    ]


def fmt(value: float | None, spec: str = ".4f") -> str:
    """A table cell: ``-`` where there is no figure."""
    return "-" if value is None else format(value, spec)
