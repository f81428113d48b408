"""A finished run's dataset, features and model configs, read back from its config.yaml.

Its own module, light to import (OmegaConf and the config registry only), so that serving
and prediction read a run without loading the training and compression stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aureon.config.registry import REGISTRY
from aureon.exceptions import ConfigError, describe


def saved_schema(group: str, section: DictConfig) -> type:
    """The registered schema a saved group section was composed from.

    A section names its option (``name``); a model's names the class it
    builds (``_target_``), which each model option sets to its own.
    """
    options = REGISTRY.options(group)
    key = "name" if "name" in section else "_target_"
    by_key = {getattr(option.schema(), key, None): option.schema for option in options.values()}
    schema = by_key.get(section.get(key))
    if schema is None:
        raise ConfigError(
            f"{group}.{key}={section.get(key)!r} in the run's config.yaml matches no option of "
            f"conf/{group}/ ({sorted(options)})"
        )
    return schema


# What OmegaConf and PyYAML raise on a damaged or hand-edited config.yaml.
_CONFIG_ERRORS = (OmegaConfBaseException, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError)


def read_run_config(config_path: Path) -> tuple[dict[str, Any], int]:
    """The dataset, features and model configs and the seed from a run's config.yaml."""
    try:
        raw = OmegaConf.load(config_path)
        if not isinstance(raw, DictConfig):
            raise ConfigError(f"{config_path}: expected a mapping of config groups, got a list")
        typed: dict[str, Any] = {}
        raw.setdefault("features", {"name": "none"})  # runs from before the features group
        for group in ("dataset", "features", "model"):
            if not isinstance(raw.get(group), DictConfig):
                raise ConfigError(f"{config_path}: has no {group} section")
            schema = saved_schema(group, raw[group])
            merged = OmegaConf.merge(OmegaConf.structured(schema), raw[group])
            typed[group] = OmegaConf.to_object(merged)
        return typed, int(raw.get("seed", 0))
    except ConfigError:
        raise
    except _CONFIG_ERRORS as err:
        raise ConfigError(f"{config_path}: not a readable run config ({describe(err)})") from err
