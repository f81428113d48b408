"""``python -m simulations.run [overrides]``: one federated simulation, or a sweep with -m.

Examples::

    python -m simulations.run num_clients=10 num_rounds=8 strategy=fedprox
    python -m simulations.run -m privacy.target_epsilon=0.5,1,2,4 strategy=fedavg,fedprox

A bad config value or input file ends the command with one line on stderr
(``error: ...``) and exit code 2; ``--debug`` or ``AUREON_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from aureon.cli import exit_on_error, take_debug_flag
from aureon.config import register_configs, to_typed
from aureon.federated.resume import preflight
from aureon.launch.simulation import run_experiment

register_configs()


def run(cfg: DictConfig) -> float:
    """Validate the config, read its input files, run, and return the final test accuracy."""
    config = to_typed(cfg)
    preflight(config)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    results = run_experiment(config, run_dir)
    final = results["final"] or {}
    print(f"results: {run_dir / 'results.json'}")
    accuracy = final.get("test_accuracy", 0.0)
    return math.nan if accuracy is None else float(accuracy)


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """The Hydra task: ``run`` with AUREON's one-line errors and exit code 2."""
    return exit_on_error(lambda: run(cfg))


if __name__ == "__main__":
    take_debug_flag(sys.argv)
    main()
