"""The ClientApp that ``flwr run .`` starts: config from conf/, the run's overrides, then the node's own.

Started without a run_config ``overrides`` entry (``run_simulation``, another
project's run), it refuses every message with one error reply naming what is
missing; ``aureon.client_app(config)`` is the app to use there.
"""

from __future__ import annotations

from aureon.federated.apps import default_state_dir, make_client_app, run_config_source

app = make_client_app(run_config_source(client=True), default_state_dir)
