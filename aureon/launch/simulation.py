"""Run a federated experiment in Flower's Simulation Engine (Ray backend), in-process."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aureon.config import AureonConfig
from aureon.exceptions import LedgerError, RunFailed
from aureon.files import atomic_write_text
from aureon.launch.quiet import SIMULATION_ENV, quiet_flower
from aureon.launch.ray_runtime import RayStart

if TYPE_CHECKING:
    from aureon.federated.rounds import RoundEvaluatedFn

__all__ = ["SIMULATION_ENV", "backend_config", "client_state_root", "quiet_flower", "run_experiment"]


def backend_config(config: AureonConfig) -> dict[str, Any]:
    """Ray backend settings: per-client resources and, optionally, a cluster address."""
    init_args: dict[str, Any] = {"include_dashboard": False}
    if config.simulation.ray_address:
        init_args["address"] = config.simulation.ray_address
    return {
        "client_resources": {
            "num_cpus": config.simulation.client_cpus,
            "num_gpus": config.simulation.client_gpus,
        },
        "init_args": init_args,
    }


CLIENT_STATE_POINTER = "client-state.json"


def client_state_root(config: AureonConfig, run_dir: Path, *, shared: Path | None = None) -> Path:
    """Where the simulated clients keep their ledgers: ``shared``, else the run's ``clients/``, or on a resume
    the directory the resumed run used (so every client's spent epsilon continues).

    The run directory records the choice in ``client-state.json``, so a resume
    of a resume still finds the ledgers of the first run.
    """
    if config.resume:
        pointer = Path(config.resume) / CLIENT_STATE_POINTER
        try:
            root = Path(json.loads(pointer.read_text(encoding="utf-8"))["dir"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LedgerError(
                f"resume={config.resume!r}: cannot read {pointer} ({type(error).__name__}); without "
                "the clients' privacy ledgers their spent epsilon cannot be continued"
            ) from None
        if not root.is_dir():
            raise LedgerError(
                f"resume={config.resume!r}: the clients' ledgers {root} are missing; "
                "refusing to restart their spent epsilon from zero"
            )
    else:
        root = (Path(shared) if shared is not None else Path(run_dir) / "clients").resolve()
    atomic_write_text(Path(run_dir) / CLIENT_STATE_POINTER, json.dumps({"dir": str(root)}))
    return root


def run_experiment(
    config: AureonConfig,
    run_dir: Path,
    *,
    ray: RayStart | None = None,
    clients_dir: Path | None = None,
    on_round_evaluated: RoundEvaluatedFn | None = None,
) -> dict[str, Any]:
    """Run one experiment (federated in simulation, or the centralized baseline).

    ``ray``: a Ray start already under way (``RayStart``, begun as soon as the
    config was valid); without it Ray is started here. ``clients_dir``: where the
    simulated clients keep their ledgers, when several runs are the same clients'
    (federated HPO: every trial charges the same ledgers); default the run's own.
    ``on_round_evaluated``: see ``aureon.federated.server.run_server``.
    """
    run_dir = Path(run_dir)
    if not config.strategy.federated:
        from aureon.federated.centralized import run_centralized

        return run_centralized(config, run_dir)

    ray = ray or RayStart(config)
    from flwr.simulation import run_simulation

    from aureon.federated.apps import make_client_app, make_server_app, partition_state_dirs
    from aureon.federated.client import prepare_client_partitions

    quiet_flower(config.verbose)
    prepare_client_partitions(config)  # once, here: no client imports flwr-datasets or splits the data
    server_app = make_server_app(lambda _ctx: config, lambda _ctx: run_dir, on_round_evaluated=on_round_evaluated)
    states = client_state_root(config, run_dir, shared=clients_dir)
    client_app = make_client_app(lambda _ctx: config, partition_state_dirs(states))
    ray.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=config.num_clients,
            backend_config=backend_config(config),
            verbose_logging=config.verbose,
        )
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        raise RunFailed(f"the simulation ended without writing {results_path}")
    results = json.loads(results_path.read_text())
    if not results.get("finished"):
        hint = "" if config.verbose else "; verbose=true shows Flower's and Ray's log"
        raise RunFailed(
            f"the simulation stopped after {results.get('rounds_completed')} of "
            f"{config.num_rounds} rounds; see {results_path}{hint}"
        )
    return results
