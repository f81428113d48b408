"""The ServerApp that ``flwr run .`` starts: config from conf/ plus run_config overrides.

Started without a run_config ``overrides`` entry (``run_simulation``, another
project's run), it stops with one ConfigError naming what is missing instead
of running on conf/'s defaults; ``aureon.server_app(config)`` is the app to
use there.
"""

from __future__ import annotations

from aureon.federated.apps import default_run_dir, make_server_app, run_config_source

app = make_server_app(run_config_source(client=False), default_run_dir)
