"""``python -m simulations.run [overrides]``: one federated simulation, or a sweep with -m.

Examples::

    python -m simulations.run num_clients=10 num_rounds=8 strategy=fedprox
    python -m simulations.run -m privacy.target_epsilon=0.5,1,2,4 strategy=fedavg,fedprox
    python -m simulations.run verbose=true      # Flower's, Ray's and libraries' logs too

A bad config value, an unknown group option or a bad input file ends the
command with one line on stderr (``error: ...``) and exit code 2, within a
second or two: the config is composed and validated before torch, Flower and
Ray are imported. ``--debug`` or ``AUREON_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from aureon.cli import exit_on_error, run_hydra
from aureon.config import AureonConfig, register_configs, to_typed

register_configs()


def summary(config: AureonConfig, results: dict[str, Any], *, seconds: float, results_path: Path) -> str:
    """The closing lines: accuracy, the privacy guarantee it was reached under, time, where the files are."""
    final = results.get("final") or {}
    accuracy = final.get("test_accuracy")
    if results.get("test_metric") == "r2":  # a regression run: its test score is R^2, not accuracy
        head = f"test R^2 {accuracy:.4f}" if accuracy is not None else "no test R^2"
    else:
        head = f"test accuracy {accuracy:.2%}" if accuracy is not None else "no test accuracy"
    rounds = results.get("rounds_completed")
    parts = [f"done: {head} after {rounds} round{'' if rounds == 1 else 's'} with {config.num_clients} clients"]
    privacy = results.get("privacy") or {}
    from aureon.privacy.client_level import guarantee_lines  # after the run: its imports are loaded

    parts.extend(guarantee_lines(privacy, sample_epsilon=final.get("epsilon_max")))
    from aureon.features.tabular.prepare import statistics_line

    line = statistics_line(privacy if "feature_statistics" in privacy else privacy.get("configured") or {})
    if line is not None:
        parts.append(line)
    parts.append(f"{seconds:.1f} s")
    return "; ".join(parts) + f"\nresults: {results_path}"


def run(cfg: DictConfig) -> float:
    """Validate the config, read its input files, run, and return the final test accuracy."""
    started = time.perf_counter()
    config = to_typed(cfg)
    config.check_resume_dir()
    # Valid: only now the heavy part (Ray, torch, Flower), Ray starting while the rest loads.
    from aureon.launch.quiet import quiet_run
    from aureon.launch.ray_runtime import RayStart

    quiet_run(verbose=config.verbose)
    ray = RayStart(config) if config.strategy.federated else None

    from aureon.federated.resume import preflight
    from aureon.launch.simulation import run_experiment

    preflight(config)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    results = run_experiment(config, run_dir, ray=ray)
    print(summary(config, results, seconds=time.perf_counter() - started, results_path=run_dir / "results.json"))
    accuracy = (results.get("final") or {}).get("test_accuracy", 0.0)
    return math.nan if accuracy is None else float(accuracy)


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """The Hydra task: ``run`` with AUREON's one-line errors and exit code 2."""
    return exit_on_error(lambda: run(cfg))


if __name__ == "__main__":
    run_hydra(main)
