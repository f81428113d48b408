"""The one bridge between Hydra's composed config and Flower's flat run_config.

``flwr run .`` can only pass flat scalars to the apps, so the run_config
carries Hydra overrides (``overrides = "num_rounds=3 privacy=none"``) and
the apps compose ``conf/`` with them: ``conf/`` stays the single source of
truth for ``python -m simulations.run`` and ``flwr run .`` alike.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from aureon import keys
from aureon.config import AureonConfig, register_configs, to_typed

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

ConfigValue = bool | int | float | str
_KEY = re.compile(r"[A-Za-z0-9_.-]+")


# ------------------------------------------------------------------ the codec
# Two encodings nest: a Hydra ``overrides`` list is one string (shell quoting),
# and that string is one value of Flower's ``--run-config``/``--node-config``
# "key=value key=value" string (TOML values). Each has one encoder and one decoder.


def join_overrides(overrides: Sequence[str]) -> str:
    """Hydra overrides as one string; ``split_overrides`` gives back the same list."""
    return shlex.join(str(item) for item in overrides)


def split_overrides(text: str | None) -> list[str]:
    """The overrides that ``join_overrides`` encoded (split the way a POSIX shell would)."""
    return shlex.split(str(text or ""))


def toml_value(value: ConfigValue) -> str:
    """One value as Flower's config parser reads it: a TOML bool, integer, float or string.

    Flower cuts ``key=value`` pairs with the pattern ``"[^"]*"|'[^']*'|\\S+`` before
    TOML sees them, so a string must not hold a literal double quote: it is written
    as the TOML escape \\u0022 (and backslashes and control characters escaped too).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # TOML reads Python's float repr, inf and nan included
    if not isinstance(value, str):
        raise TypeError(f"a run_config value must be a bool, int, float or str, got {type(value).__name__}")
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_config(entries: Mapping[str, ConfigValue]) -> str:
    """Flower's ``--run-config``/``--node-config`` string: space-separated key=value, TOML values."""
    pairs = []
    for key, value in entries.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"a run_config key must match {_KEY.pattern}, got {key!r}")
        pairs.append(f"{key}={toml_value(value)}")
    return " ".join(pairs)


def parse_config(text: str) -> dict[str, Any]:
    """What Flower's apps receive for a ``format_config`` string (Flower's own parser)."""
    from flwr.common.config import parse_config_args

    return dict(parse_config_args([text]))


def run_config_for(overrides: Sequence[str], run_dir: Path | str) -> dict[str, ConfigValue]:
    """The run_config AUREON submits: the Hydra overrides and where the run writes its outputs."""
    return {keys.RUN_CONFIG_OVERRIDES: join_overrides(overrides), keys.RUN_CONFIG_RUN_DIR: str(run_dir)}


def run_dir_from_run_config(run_config: Mapping[str, object]) -> str:
    """The run directory the submitter chose ("" when it chose none)."""
    return str(run_config.get(keys.RUN_CONFIG_RUN_DIR, "") or "")


# ------------------------------------------------------------ run_config -> config


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
    """The run_config's ``overrides`` string, decoded (see ``join_overrides``)."""
    return split_overrides(run_config.get(keys.RUN_CONFIG_OVERRIDES))  # type: ignore[arg-type]


def config_from_run_config(run_config: Mapping[str, object]) -> AureonConfig:
    """The run's config as ``flwr run`` delivers it to a ServerApp or ClientApp."""
    return compose_config(overrides_from_run_config(run_config))


def config_for_client(run_config: Mapping[str, object], node_config: Mapping[str, object]) -> AureonConfig:
    """The server's run config, then this client's own overrides (its data path, ...) on top."""
    own = split_overrides(node_config.get(keys.NODE_OVERRIDES))  # type: ignore[arg-type]
    return compose_config([*overrides_from_run_config(run_config), *own])
