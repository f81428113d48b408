"""Flower ServerApp and ClientApp built around AUREON's handlers.

A ``ConfigSource`` tells the apps where the run's config comes from: a typed
config captured in simulation mode, or the Hydra overrides that ``flwr run``
puts in ``context.run_config``. Everything else is the same code path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from aureon.config import AureonConfig
from aureon.federated.client import handle_evaluate
from aureon.federated.client_state import train_with_persisted_state
from aureon.federated.faults import train_with_faults
from aureon.federated.secagg_handlers import register_secagg_handlers
from aureon.federated.server import run_server

ConfigSource = Callable[[Context], AureonConfig]
RunDirSource = Callable[[Context], Path]


def make_client_app(config_source: ConfigSource) -> ClientApp:
    """A ClientApp whose handlers read the run's config from ``config_source``."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return train_with_persisted_state(
            msg, context, config_source(context), train=train_with_faults
        )

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return handle_evaluate(msg, context, config_source(context))

    register_secagg_handlers(app, config_source)
    return app


def make_server_app(config_source: ConfigSource, run_dir_source: RunDirSource) -> ServerApp:
    """A ServerApp that runs AUREON's coordinator loop."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_server(grid, config_source(context), run_dir_source(context))

    return app
