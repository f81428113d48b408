"""The options of every config group, and the one way an option is built.

A config dataclass joins a group with ``@register(group, name, builder=...)``:
``store.register_configs`` puts it in Hydra's ConfigStore as ``schema_<name>``
(what ``conf/<group>/<name>.yaml`` extends), and ``build`` calls the function
that ``builder`` names by dotted path. The path is imported only when something
is built, so ``import aureon.config`` pulls in no torch, Flower or data loader,
and the builder lives beside what it builds. Adding a dataset, partition,
strategy or feature transform is one decorated class in the group's module, one
builder function, and one YAML file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, is_dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from aureon.exceptions import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Option:
    """One choice of a group: ``conf/<group>/<name>.yaml``, its schema, what builds it."""

    group: str
    name: str
    schema: type
    builder: str | None  # "package.module.function"; None: nothing to build (read where it is used)


class Registry:
    """Group -> option name -> Option; each schema class belongs to one option of one group."""

    def __init__(self) -> None:
        self._options: dict[str, dict[str, Option]] = {}
        self._by_schema: dict[type, Option] = {}

    def register(self, group: str, name: str, *, builder: str | None = None) -> Callable[[type[T]], type[T]]:
        """A class decorator (above ``@dataclass``) that makes the class option ``group=name``."""
        if builder is not None and "." not in builder:
            raise ValueError(f"builder must be a dotted path 'package.module.function', got {builder!r}")

        def add(schema: type[T]) -> type[T]:
            if not is_dataclass(schema):
                raise TypeError(f"{schema.__qualname__} must be a dataclass to be registered as {group}={name}")
            declared = getattr(schema, "name", name)
            if declared != name:
                raise ValueError(
                    f"{schema.__qualname__}.name defaults to {declared!r}, "
                    f"but the class is registered as {group}={name}"
                )
            options = self._options.setdefault(group, {})
            taken = options.get(name)
            if taken is not None and not _same_class(taken.schema, schema):
                raise ValueError(
                    f"{group}={name} is already registered by {taken.schema.__qualname__}; "
                    f"choose another name for {schema.__qualname__}"
                )
            known = self._by_schema.get(schema)
            if known is not None and (known.group, known.name) != (group, name):
                raise ValueError(f"{schema.__qualname__} is already registered as {known.group}={known.name}")
            if taken is not None:
                del self._by_schema[taken.schema]
            option = Option(group=group, name=name, schema=schema, builder=builder)
            options[name] = option
            self._by_schema[schema] = option
            return schema

        return add

    def groups(self) -> tuple[str, ...]:
        return tuple(self._options)

    def options(self, group: str) -> Mapping[str, Option]:
        """The options of ``group`` by name; an unknown group fails with the known ones."""
        if group not in self._options:
            raise ConfigError(f"config group must be one of {sorted(self._options)}, got {group!r}")
        return MappingProxyType(self._options[group])

    def option_of(self, group: str, config: object) -> Option:
        """The option whose schema ``config`` is an instance of; its ``name`` field must agree.

        Dispatch follows the class Hydra composed from ``group=<name>``, so a
        ``name`` edited to something else is refused here rather than ignored.
        """
        choices = sorted(self.options(group))
        found = (self._by_schema.get(cls) for cls in type(config).__mro__)
        option = next((o for o in found if o is not None and o.group == group), None)
        name = getattr(config, "name", None)
        if option is None:
            raise ConfigError(
                f"{group}.name must be one of {choices}, got {name!r} "
                f"({type(config).__qualname__} is not a registered {group} schema)"
            )
        if name is not None and name != option.name:
            raise ConfigError(
                f"{group}.name must be {option.name!r} for {group}={option.name}, got {name!r}; "
                f"pick another option with {group}=<one of {choices}> instead"
            )
        return option

    def build(self, group: str, config: object, /, *, expect: type[T], **kwargs: Any) -> T:
        """Call the builder of ``config``'s option with ``config`` and ``kwargs``; check it made an ``expect``."""
        option = self.option_of(group, config)
        if option.builder is None:
            raise ConfigError(
                f"{group}={option.name} builds nothing here; expected one of {sorted(self.buildable(group))}"
            )
        built = _resolve(option.builder)(config, **kwargs)
        if not isinstance(built, expect):
            raise TypeError(
                f"{option.builder} (the builder of {group}={option.name}) returned a "
                f"{type(built).__qualname__}, expected a {expect.__qualname__}"
            )
        return built

    def buildable(self, group: str) -> tuple[str, ...]:
        """The options of ``group`` that have a builder."""
        return tuple(name for name, option in self.options(group).items() if option.builder is not None)


def _same_class(old: type, new: type) -> bool:
    """True for the same class, or its re-definition when its module is reloaded."""
    return old is new or (old.__module__, old.__qualname__) == (new.__module__, new.__qualname__)


def _resolve(path: str) -> Callable[..., Any]:
    """Import ``package.module.function`` (only now: builders import torch, Flower, loaders)."""
    module_name, _, attribute = path.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"builder {path!r}: module {module_name} has no {attribute!r}") from None
    if not callable(target):
        raise TypeError(f"builder {path!r} is a {type(target).__qualname__}, not a function")
    return target


class _GroupsView(Mapping[str, Mapping[str, type]]):
    """Read-only and live: group -> option name -> schema class."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getitem__(self, group: str) -> Mapping[str, type]:
        if group not in self._registry.groups():
            raise KeyError(group)
        return MappingProxyType({name: option.schema for name, option in self._registry.options(group).items()})

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.groups())

    def __len__(self) -> int:
        return len(self._registry.groups())


REGISTRY = Registry()
register = REGISTRY.register
option_of = REGISTRY.option_of
build = REGISTRY.build
GROUPS: Mapping[str, Mapping[str, type]] = _GroupsView(REGISTRY)
