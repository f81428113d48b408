"""Differential privacy: noise calibration, local entropy, the client's floor and ledger, DP-SGD.

The names below load on first use (PEP 562): ``aureon.privacy.floor``, which
``python -m clients`` needs to check its flags, must not pull in Opacus and torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aureon.privacy.accounting import DpPlan, plan_dp, sample_rate_for, steps_per_round

__all__ = ["DpPlan", "plan_dp", "sample_rate_for", "steps_per_round"]
_FROM = dict.fromkeys(__all__, "aureon.privacy.accounting")


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
