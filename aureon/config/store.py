"""Hydra's side: every schema in the ConfigStore, a composed DictConfig to typed objects, and back."""

from __future__ import annotations

import dataclasses
from dataclasses import fields
from typing import Any

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
            store.store(group=group, name=f"schema_{name}", node=_with_open_mappings(option.schema))


def _with_open_mappings(schema: type) -> DictConfig:
    """The schema with its plain ``dict`` fields open to new keys.

    Hydra composes in struct mode, where a dict field of a schema refuses keys
    it does not already hold, so ``features.bounds={age: [0, 100]}`` (keys that
    are the user's column names) would fail with "Key 'age' is not in struct".
    Nested config dataclasses stay closed: a typo in their keys is still an error.
    """
    node = OmegaConf.structured(schema)
    for field in fields(schema):
        if OmegaConf.get_type(node, field.name) is dict:
            OmegaConf.set_struct(node[field.name], False)
    return node


def to_typed(cfg: DictConfig) -> AureonConfig:
    """Turn a composed DictConfig into validated dataclasses (the only place this happens)."""
    typed = OmegaConf.to_object(cfg)
    if not isinstance(typed, AureonConfig):
        raise ConfigError(
            f"the composed config must be an AureonConfig, got {type(typed).__name__}; "
            "does conf/config.yaml list 'schema_config' first in its defaults?"
        )
    unknown = unknown_keys(typed)
    if unknown:
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(repr(k) for k in unknown)}: "
            "not a setting of AUREON's config (a typo, or a key added with '+' that nothing reads?); "
            "`python -m simulations.run --cfg job` lists the valid keys"
        )
    groups = set(REGISTRY.groups())
    for field in fields(typed):
        if field.name in groups:
            REGISTRY.option_of(field.name, getattr(typed, field.name))
    typed.validate()
    return typed


def unknown_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted names of attributes on ``node`` (and its nested dataclasses) that are not declared fields.

    OmegaConf keeps a key added with ``+key=value`` as an extra attribute of the
    dataclass it builds; nothing would ever read it, so the caller refuses it.
    """
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return []
    declared = {field.name for field in fields(node)}
    found = [f"{prefix}{name}" for name in vars(node) if name not in declared and not name.startswith("_")]
    for name in declared:
        found += unknown_keys(getattr(node, name), f"{prefix}{name}.")
    return sorted(found)


def to_yaml(cfg: AureonConfig) -> str:
    """The resolved config as YAML, for the run directory."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
