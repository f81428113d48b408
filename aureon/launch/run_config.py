"""The one bridge between Hydra's composed config and Flower's flat run_config.

``flwr run .`` can only pass flat scalars to the apps, so the run_config
carries Hydra overrides (``overrides = "num_rounds=3 privacy=none"``) and
the apps compose ``conf/`` with them: ``conf/`` stays the single source of
truth for ``python -m simulations.run`` and ``flwr run .`` alike.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from hydra import compose, initialize_config_dir

from aureon import keys
from aureon.config import AureonConfig, register_configs, to_typed

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: Sequence[str] = ()) -> AureonConfig:
    """Compose conf/config.yaml with Hydra overrides into a validated config."""
    return _compose(tuple(overrides))


@lru_cache(maxsize=8)
def _compose(overrides: tuple[str, ...]) -> AureonConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    return to_typed(cfg)


def overrides_from_run_config(run_config: Mapping[str, object]) -> list[str]:
    """Split the run_config's ``overrides`` string the way a shell would."""
    return shlex.split(str(run_config.get(keys.RUN_CONFIG_OVERRIDES, "") or ""))


def config_from_run_config(run_config: Mapping[str, object]) -> AureonConfig:
    """The run's config as ``flwr run`` delivers it to a ServerApp or ClientApp."""
    return compose_config(overrides_from_run_config(run_config))


def config_for_client(run_config: Mapping[str, object], node_config: Mapping[str, object]) -> AureonConfig:
    """The server's run config, then this client's own overrides (its data path, ...) on top."""
    own = shlex.split(str(node_config.get(keys.NODE_OVERRIDES, "") or ""))
    return compose_config([*overrides_from_run_config(run_config), *own])
