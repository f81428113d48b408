"""Flower ServerApp and ClientApp built around AUREON's handlers.

A ``ConfigSource`` tells the apps where the run's config comes from: a config
given in Python (``client_app``/``server_app``, AUREON's own simulation), or
the Hydra overrides that ``flwr run`` puts in ``context.run_config``.
Everything else is the same code path.

``client_app(config)`` and ``server_app(config)`` (re-exported as
``aureon.client_app``/``aureon.server_app``) are the public way to put AUREON
next to your own Flower apps, e.g. under ``flwr.simulation.run_simulation``,
which passes no run_config: they take a composed ``AureonConfig`` or a list of
Hydra overrides (``["dataset=digits", "privacy=none"]``) and ignore
run_config. A ClientApp that finds no config at all refuses every message
with one error reply instead of training on ``conf/``'s defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from aureon import keys
from aureon.config import AureonConfig
from aureon.exceptions import ConfigError
from aureon.features.tabular.messages import register_tabular_handlers
from aureon.federated.client import handle_evaluate
from aureon.federated.client_state import train_with_persisted_state
from aureon.federated.faults import train_with_faults
from aureon.federated.refusals import refusal
from aureon.launch.run_config import (
    compose_config,
    overrides_from_run_config,
    run_dir_from_run_config,
    split_overrides,
)
from aureon.privacy.client_level_client import client_clipping_mod
from aureon.secagg.handlers import register_secagg_handlers

if TYPE_CHECKING:
    from aureon.federated.rounds import RoundEvaluatedFn  # a type only: clients never load the round loop

ConfigSource = Callable[[Context], AureonConfig]
RunDirSource = Callable[[Context], Path]
StateDirSource = Callable[[Context], Path]
AppConfig = AureonConfig | Sequence[str]


def partition_state_dirs(root: Path) -> StateDirSource:
    """One state directory per simulated client under ``root`` (a run's ``clients/``)."""
    return lambda context: Path(root) / f"partition-{int(context.node_config[keys.NODE_PARTITION_ID])}"


def default_run_dir(context: Context) -> Path:
    """The run directory the submitter chose in run_config, else ``outputs/flwr/<run id>``."""
    chosen = run_dir_from_run_config(context.run_config)
    return Path(chosen) if chosen else Path("outputs") / "flwr" / str(context.run_id)


def default_state_dir(context: Context) -> Path:
    """A simulated node's state directory (its privacy ledger): ``<run dir>/clients/partition-<id>``."""
    return partition_state_dirs(default_run_dir(context) / "clients")(context)


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
    """A ClientApp whose handlers read the run's config from ``config_source``.

    A ConfigError while reading the config or the request (no config, bad
    overrides, a bad train config value) is the reply's error, not a crash.
    """
    app = ClientApp()
    if state_dir_source is not None:
        config_source = _with_state_dir(config_source, state_dir_source)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        try:
            config = config_source(context)

            def handle(request: Message, node: Context) -> Message:
                return train_with_persisted_state(request, node, config, train=train_with_faults)

            clip = client_clipping_mod(config.privacy)  # client-level DP clipped on the client
            return handle(msg, context) if clip is None else clip(msg, context, handle)
        except ConfigError as error:
            return refusal(msg, error)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        try:
            return handle_evaluate(msg, context, config_source(context))
        except ConfigError as error:
            return refusal(msg, error)

    register_secagg_handlers(app, config_source)
    register_tabular_handlers(app, config_source)
    return app


def make_server_app(
    config_source: ConfigSource, run_dir_source: RunDirSource, *, on_round_evaluated: RoundEvaluatedFn | None = None
) -> ServerApp:
    """A ServerApp that runs AUREON's coordinator loop (``on_round_evaluated``: see ``run_server``)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        from aureon.federated.server import run_server  # here: a client process never loads the server's modules

        run_server(grid, config_source(context), run_dir_source(context), on_round_evaluated=on_round_evaluated)

    return app


# ------------------------------------------------------------ where the config comes from


def _overrides(given: Sequence[str]) -> list[str]:
    if isinstance(given, str):
        raise ConfigError(
            f"expected an AureonConfig or a list of Hydra overrides, got the string {given!r}; "
            f"write it as a list, e.g. {split_overrides(given)!r}"
        )
    overrides = list(given)
    odd = [item for item in overrides if not isinstance(item, str)]
    if odd:
        raise ConfigError(f"Hydra overrides must be strings like 'dataset=digits', got {odd[0]!r}")
    return overrides


def node_overrides(context: Context) -> list[str]:
    """The client's own overrides from its node config (``python -m clients``: its data path, ...)."""
    return split_overrides(context.node_config.get(keys.NODE_OVERRIDES))  # type: ignore[arg-type]


def given_config_source(config: AppConfig) -> ConfigSource:
    """The source of a config given in Python; composed now, so a bad override fails here.

    A node's own overrides go on top of given overrides; a composed config
    cannot take them, so such a node is told to pass overrides instead.
    """
    if isinstance(config, AureonConfig):
        composed = config

        def typed(context: Context) -> AureonConfig:
            own = node_overrides(context)
            if own:
                raise ConfigError(
                    f"this node's config has overrides {own} (node config {keys.NODE_OVERRIDES!r}), which a "
                    "composed AureonConfig cannot take; build the app from a list of overrides instead"
                )
            return composed

        return typed
    overrides = _overrides(config)
    compose_config(overrides)
    return lambda context: compose_config([*overrides, *node_overrides(context)])


def run_config_source(*, client: bool) -> ConfigSource:
    """The config ``flwr run .`` describes: conf/ with run_config's ``overrides`` (and a node's own).

    Without an ``overrides`` entry (``run_simulation``, a foreign ServerApp's
    run) there is no AUREON config to speak of: a ConfigError, not defaults.
    """

    app, factory = ("ClientApp", "client_app") if client else ("ServerApp", "server_app")

    def source(context: Context) -> AureonConfig:
        if keys.RUN_CONFIG_OVERRIDES not in context.run_config:
            raise ConfigError(
                f"this AUREON {app} found no config: its run_config has no {keys.RUN_CONFIG_OVERRIDES!r} "
                f"entry (flwr.simulation.run_simulation passes none); build the app with aureon.{factory}(config) "
                f"or aureon.{factory}(['dataset=digits', ...]), or start it with `flwr run .`, which sets "
                f"{keys.RUN_CONFIG_OVERRIDES!r} from pyproject.toml's [tool.flwr.app.config]"
            )
        own = node_overrides(context) if client else []
        return compose_config([*overrides_from_run_config(context.run_config), *own])

    return source


def client_app(config: AppConfig, *, state_dir: str | Path | None = None) -> ClientApp:
    """AUREON's ClientApp (DP-SGD, ledger, floor, codecs) for ``config``, whatever run_config says.

    ``config`` is a composed ``AureonConfig`` or a list of Hydra overrides on
    conf/. ``state_dir`` is the root under which each simulated node keeps its
    privacy ledger (``<state_dir>/partition-<id>``); by default the run's
    directory, ``outputs/flwr/<run id>/clients``. A node started with its own
    ``state-dir`` (``python -m clients``) keeps that one.
    """
    states = default_state_dir if state_dir is None else partition_state_dirs(Path(state_dir))
    return make_client_app(given_config_source(config), states)


def server_app(config: AppConfig, *, run_dir: str | Path | None = None) -> ServerApp:
    """AUREON's ServerApp (round loop, validation, results.json) for ``config``, whatever run_config says.

    ``run_dir`` receives results.json, TensorBoard events and checkpoints; by
    default ``outputs/flwr/<run id>``.
    """
    runs = default_run_dir if run_dir is None else (lambda _context: Path(run_dir))
    return make_server_app(given_config_source(config), runs)
