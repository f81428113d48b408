"""The ClientApp that ``flwr run .`` starts: config from conf/ plus run_config overrides."""

from __future__ import annotations

from aureon.federated.apps import make_client_app
from aureon.launch.run_config import config_from_run_config

app = make_client_app(lambda ctx: config_from_run_config(ctx.run_config))
