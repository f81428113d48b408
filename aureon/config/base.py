"""What every config group shares: ``require``, the one way a range check fails."""

from __future__ import annotations

import math
from typing import Any

from aureon.exceptions import ConfigError


def require(ok: bool, key: str, value: Any, expected: str) -> None:
    """Raise a ConfigError naming the key, the value received and what was expected.

    A float value must also be finite, whatever ``ok`` says: ``inf > 0`` holds,
    and a run with ``train.lr=inf`` "finished" with every update rejected.
    """
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
        if "finite" not in expected:
            expected = f"a finite number {expected}"
    if not ok:
        raise ConfigError(f"{key} must be {expected}, got {value!r} (set in conf/ or on the command line)")
