"""AUREON: federated learning with differential privacy on Flower's Message API.

To run AUREON's apps beside your own Flower apps, get them for a config with
``aureon.client_app(config)`` and ``aureon.server_app(config)``: ``config`` is a
composed ``AureonConfig`` or a list of Hydra overrides on conf/, e.g.
``aureon.client_app(["dataset=digits", "privacy=dp_sgd"])``. They import Flower,
torch and Opacus only when called, so ``import aureon`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp

    from aureon.config import AureonConfig

__version__ = "0.1.0"
__all__ = ["__version__", "client_app", "server_app"]


def client_app(config: AureonConfig | Sequence[str], *, state_dir: str | Path | None = None) -> ClientApp:
    """AUREON's ClientApp for ``config``, for any ServerApp (see aureon.federated.apps.client_app)."""
    from aureon.federated.apps import client_app as build

    return build(config, state_dir=state_dir)


def server_app(config: AureonConfig | Sequence[str], *, run_dir: str | Path | None = None) -> ServerApp:
    """AUREON's ServerApp for ``config``, for any ClientApp (see aureon.federated.apps.server_app)."""
    from aureon.federated.apps import server_app as build

    return build(config, run_dir=run_dir)
