"""Server strategies: Flower's Message-API strategies built from config, and wrappers."""

from aureon.strategies.build import build_strategy
from aureon.strategies.round_recorder import RoundRecorder

__all__ = ["RoundRecorder", "build_strategy"]
