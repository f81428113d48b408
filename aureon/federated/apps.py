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

from aureon import keys
from aureon.config import AureonConfig
from aureon.federated.client import handle_evaluate
from aureon.federated.client_state import train_with_persisted_state
from aureon.federated.faults import train_with_faults
from aureon.federated.server import run_server
from aureon.secagg.handlers import register_secagg_handlers

ConfigSource = Callable[[Context], AureonConfig]
RunDirSource = Callable[[Context], Path]
StateDirSource = Callable[[Context], Path]


def partition_state_dirs(root: Path) -> StateDirSource:
    """One state directory per simulated client under ``root`` (a run's ``clients/``)."""
    return lambda context: Path(root) / f"partition-{int(context.node_config[keys.NODE_PARTITION_ID])}"


def _with_state_dir(config_source: ConfigSource, state_dir_source: StateDirSource) -> ConfigSource:
    """``config_source`` that first gives a node without a ``state-dir`` of its own one.

    A SuperNode started by ``python -m clients`` brings its state directory in
    its node config; simulated nodes get theirs from the run's side here.
    """

    def source(context: Context) -> AureonConfig:
        if not context.node_config.get(keys.NODE_STATE_DIR):
            context.node_config[keys.NODE_STATE_DIR] = str(state_dir_source(context))
        return config_source(context)

    return source


def make_client_app(config_source: ConfigSource, state_dir_source: StateDirSource | None = None) -> ClientApp:
    """A ClientApp whose handlers read the run's config from ``config_source``."""
    app = ClientApp()
    if state_dir_source is not None:
        config_source = _with_state_dir(config_source, state_dir_source)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return train_with_persisted_state(msg, context, config_source(context), train=train_with_faults)

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
