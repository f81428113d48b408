"""The ServerApp that ``flwr run .`` starts: config from conf/ plus run_config overrides."""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context

from aureon.federated.apps import make_server_app
from aureon.launch.run_config import config_from_run_config, run_dir_from_run_config


def _run_dir(context: Context) -> Path:
    chosen = run_dir_from_run_config(context.run_config)
    return Path(chosen) if chosen else Path("outputs") / "flwr" / str(context.run_id)


app = make_server_app(lambda ctx: config_from_run_config(ctx.run_config), _run_dir)
