"""The ClientApp that ``flwr run .`` starts: config from conf/, the run's overrides, then the node's own."""

from __future__ import annotations

from aureon.federated.apps import make_client_app
from aureon.launch.run_config import config_for_client

app = make_client_app(lambda ctx: config_for_client(ctx.run_config, ctx.node_config))
