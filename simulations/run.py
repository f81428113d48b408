"""``python -m simulations.run [overrides]``: one federated simulation, or a sweep with -m.

Examples::

    python -m simulations.run num_clients=10 num_rounds=8 strategy=fedprox
    python -m simulations.run -m privacy.target_epsilon=0.5,1,2,4 strategy=fedavg,fedprox
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from aureon.config import register_configs, to_typed
from aureon.exceptions import AureonError
from aureon.launch.simulation import run_experiment

register_configs()


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Validate the composed config, run, and return the final test accuracy."""
    try:
        config = to_typed(cfg)
    except AureonError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    results = run_experiment(config, run_dir)
    final = results["final"] or {}
    print(f"results: {run_dir / 'results.json'}")
    return float(final.get("test_accuracy", 0.0))


if __name__ == "__main__":
    main()
