"""The ClientApp that ``flwr run .`` starts: config from conf/, the run's overrides, then the node's own."""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context

from aureon import keys
from aureon.federated.apps import make_client_app
from aureon.launch.run_config import config_for_client, run_dir_from_run_config


def _simulated_state_dir(context: Context) -> Path:
    """A node of Flower's own simulation keeps its ledger in the run directory."""
    run_dir = run_dir_from_run_config(context.run_config)
    root = Path(run_dir) if run_dir else Path("outputs") / "flwr" / str(context.run_id)
    return root / "clients" / f"partition-{int(context.node_config[keys.NODE_PARTITION_ID])}"


app = make_client_app(lambda ctx: config_for_client(ctx.run_config, ctx.node_config), _simulated_state_dir)
