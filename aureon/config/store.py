"""Hydra's side: every schema in the ConfigStore, a composed DictConfig to typed objects, and back."""

from __future__ import annotations

from dataclasses import fields

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from aureon.config.registry import GROUPS, REGISTRY
from aureon.config.run import AureonConfig  # imports every group's module, so every option is registered
from aureon.exceptions import ConfigError

__all__ = ["GROUPS", "register_configs", "to_typed", "to_yaml"]


def register_configs() -> None:
    """Store every registered schema in Hydra's ConfigStore (``schema_<name>`` in its group)."""
    store = ConfigStore.instance()
    store.store(name="schema_config", node=AureonConfig)
    for group in REGISTRY.groups():
        for name, option in REGISTRY.options(group).items():
            store.store(group=group, name=f"schema_{name}", node=option.schema)


def to_typed(cfg: DictConfig) -> AureonConfig:
    """Turn a composed DictConfig into validated dataclasses (the only place this happens)."""
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, AureonConfig):
        raise ConfigError(
            f"the composed config must be an AureonConfig, got {type(typed).__name__}; "
            "does conf/config.yaml list 'schema_config' first in its defaults?"
        )
    groups = set(REGISTRY.groups())
    for field in fields(typed):
        if field.name in groups:
            REGISTRY.option_of(field.name, getattr(typed, field.name))
    typed.validate()
    return typed


def to_yaml(cfg: AureonConfig) -> str:
    """The resolved config as YAML, for the run directory."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
