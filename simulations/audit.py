"""``python -m simulations.audit [overrides]``: one federated run with canaries, then its privacy audit.

Examples::

    python -m simulations.audit audit.canaries=1000 model=cnn features=none
    python -m simulations.audit audit.canaries=1000 privacy=none        # the same run without DP
    python -m simulations.audit +experiment=mnist_dp dataset.path=/path/to/mnist audit.canaries=1000
    python -m simulations.audit privacy=client_level audit.kind=canary_clients audit.canaries=100

The config is the one ``simulations.run`` composes, plus ``audit`` (conf/ has no
file for it: aureon/config/audit.py holds its defaults). ``audit.canaries`` held-out
training examples with a wrong label are each given, with probability 1/2, to
one client (``canaries.json`` in the run directory records which); after the
run the final model's loss on each canary decides the auditor's guesses, and
the empirical epsilon lower bound of Steinke, Nasr and Jagielski (2023) is
printed beside the epsilon the run reported and written to results.json
(``audit``). The bound is a lower bound on the true epsilon: a bound above
the reported epsilon would show the guarantee does not hold.

With ``audit.kind=canary_clients`` the canaries are whole clients (for
client-level DP): each joins the federation with probability 1/2, so
``num_clients`` grows by the included ones and the run, its sampling and its
client-level accountant all see the federation that actually ran.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from aureon.cli import exit_on_error, run_hydra
from aureon.config import AureonConfig, register_configs, to_typed
from aureon.exceptions import ConfigError

register_configs()


def check_auditable(config: AureonConfig) -> None:
    """Only a federated run with canaries can be audited here."""
    if not config.audit.enabled:
        raise ConfigError(
            f"audit.canaries must be >= 1 for simulations.audit, got {config.audit.canaries} (e.g. audit.canaries=1000)"
        )
    if not config.strategy.federated:
        raise ConfigError(
            f"strategy must be a federated strategy for simulations.audit, got {config.strategy.name!r}: "
            "the canaries are added where clients build their training data"
        )


def audit_lines(audit: dict[str, Any]) -> str:
    """The terminal's audit summary: each reported epsilon (and its guarantee) beside the empirical bound."""
    claims = audit["claims"] or [None]
    lines = [
        "audit: reported epsilon: none (no DP guarantee)"
        if claim is None
        else f"audit: reported epsilon {claim['epsilon']:.3f} (delta {claim['delta']:g}): {claim['guarantee']}"
        for claim in claims
    ]
    lines.append(
        f"audit: empirical epsilon lower bound {audit['epsilon_lower_bound']:.3f} "
        f"at {audit['confidence']:.0%} confidence (delta {audit['delta']:g}); "
        f"{audit['canaries']} {'canary clients' if audit.get('unit') == 'client' else 'canaries'} "
        f"({audit['included']} included), "
        f"{audit['guesses']} guesses ({audit['k_plus']} in, {audit['k_minus']} out), {audit['correct']} correct"
    )
    return "\n".join(lines)


def run(cfg: DictConfig) -> float:
    """Train with canaries, audit, and return the empirical epsilon lower bound."""
    started = time.perf_counter()
    from aureon.privacy.canary_clients import with_canary_clients

    config = to_typed(cfg)
    config.check_resume_dir()
    check_auditable(config)
    config = with_canary_clients(config)
    from aureon.launch.quiet import quiet_run
    from aureon.launch.ray_runtime import RayStart

    quiet_run(verbose=config.verbose)
    ray = RayStart(config)

    from aureon.federated.resume import preflight
    from aureon.launch.simulation import run_experiment
    from aureon.privacy.canary_audit import audit_run, record_canaries, run_canaries
    from simulations.run import summary

    preflight(config)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    plan = run_canaries(config)
    record_canaries(run_dir, config, plan)
    results = audit_run(config, run_dir, plan, run_experiment(config, run_dir, ray=ray))
    print(summary(config, results, seconds=time.perf_counter() - started, results_path=run_dir / "results.json"))
    print(audit_lines(results["audit"]))
    return float(results["audit"]["epsilon_lower_bound"])


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """The Hydra task: ``run`` with AUREON's one-line errors and exit code 2."""
    return exit_on_error(lambda: run(cfg))


if __name__ == "__main__":
    run_hydra(main)
