"""What watches a run besides its run directory: the live dashboard and MLflow, from the config."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from aureon.exceptions import ConfigError, describe
from aureon.tracking.listeners import RunListener

if TYPE_CHECKING:
    from aureon.config import AureonConfig
    from aureon.tracking.run_tracker import RunTracker


def attach_run_listeners(tracker: RunTracker, config: AureonConfig) -> None:
    """Start the dashboard (``dashboard=true``) and the MLflow run (``tracking.mlflow``) for ``tracker``."""
    if config.dashboard:
        from aureon.serving.dashboard import DashboardFeed, dashboard_app
        from aureon.serving.server import BackgroundServer

        feed = DashboardFeed(title=f"AUREON run {tracker.run_dir.name}", num_rounds=config.num_rounds)
        server = BackgroundServer(
            dashboard_app(feed), host=config.serving.dashboard_host, port=config.serving.dashboard_port
        ).start()
        tracker.listeners.append(feed)
        if config.serving.dashboard_linger_s > 0:
            tracker.listeners.append(_Linger(config.serving.dashboard_linger_s))
        tracker.console.print(f"[bold]dashboard:[/] {server.url}", soft_wrap=True)
    if config.tracking.mlflow:
        from aureon.tracking.mlflow_log import MlflowListener

        params = OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
        try:
            listener = MlflowListener(
                tracking_uri=config.tracking.mlflow,
                experiment=config.tracking.mlflow_experiment,
                run_name=tracker.run_dir.name,
                params={str(k): v for k, v in params.items()} if isinstance(params, dict) else {},
            )
        except ImportError as err:
            raise ConfigError(f"tracking.mlflow needs the mlflow package (pip install mlflow-skinny): {err}") from err
        except Exception as err:  # MLflow's own errors: an unusable URI, a store it refuses
            raise ConfigError(f"tracking.mlflow={config.tracking.mlflow!r}: {describe(err)}") from err
        tracker.listeners.append(listener)
        tracker.console.print(f"[bold]mlflow:[/] run {listener.run_id} at {config.tracking.mlflow}", soft_wrap=True)


class _Linger(RunListener):
    """Holds the run's end so the dashboard stays up a while (serving.dashboard_linger_s)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_finish(self, *, results: dict[str, Any], run_dir: Path) -> None:
        time.sleep(self.seconds)
