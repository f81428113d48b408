"""The client's floor and its trainer read one switch: the privacy config's ``dp_sgd()``."""

from __future__ import annotations

import pytest

from aureon.config import DpSgdConfig, NoPrivacyConfig
from aureon.exceptions import PrivacyRefused
from aureon.privacy.floor import PrivacyFloor


def test_dp_sgd_switched_off_is_plain_training_to_the_floor_as_to_the_trainer() -> None:
    off = DpSgdConfig(enabled=False)  # composing refuses it; a config built in Python still must not slip past
    assert off.dp_sgd() is None
    with pytest.raises(PrivacyRefused, match=r"^the server asked for privacy=dp_sgd; this client requires DP-SGD"):
        PrivacyFloor(require_dp=True).check_request(off)


def test_the_floor_checks_the_dp_settings_the_switch_returns() -> None:
    floor = PrivacyFloor(require_dp=True, max_epsilon=2.0, max_delta=1e-5)
    floor.check_request(DpSgdConfig(target_epsilon=2.0))
    with pytest.raises(PrivacyRefused, match=r"privacy.target_epsilon=3.0; this client spends at most 2.0"):
        floor.check_request(DpSgdConfig(target_epsilon=3.0))
    with pytest.raises(PrivacyRefused, match=r"privacy=none; this client requires DP-SGD"):
        floor.check_request(NoPrivacyConfig())
    PrivacyFloor(require_dp=False).check_request(NoPrivacyConfig())
