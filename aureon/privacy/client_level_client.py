"""The client's part in client-level DP with ``privacy.clip_on=client``: Flower's clipping mods.

The server's wrapper (DifferentialPrivacyClientSide*Clipping) puts the
clipping norm in each train request; the mod clips the update this client
sends (and, adaptive, reports whether it clipped) after the handler trained.
"""

from __future__ import annotations

from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod
from flwr.clientapp.typing import Mod

from aureon.config import PrivacyConfig


def client_clipping_mod(privacy: PrivacyConfig) -> Mod | None:
    """Flower's mod that clips this client's update, or None when the server clips (or no client-level DP)."""
    client_level = privacy.client_level()
    if client_level is None or client_level.clip_on != "client":
        return None
    return fixedclipping_mod if client_level.clipping == "fixed" else adaptiveclipping_mod
