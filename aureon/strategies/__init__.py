"""Server strategies: Flower's Message-API strategies built from config, and wrappers."""

from aureon.strategies.aggregation import wrap_aggregation
from aureon.strategies.build import build_strategy
from aureon.strategies.compressed_transport import CompressedTransport, with_compression
from aureon.strategies.norm_bounding import NormBounding
from aureon.strategies.round_recorder import RoundRecorder
from aureon.strategies.server_strategy import ServerStrategy, build_server_strategy
from aureon.strategies.update_validator import UpdateValidator
from aureon.strategies.weight_cap import WeightCap
from aureon.strategies.wrapper import ReplyCheckingWrapper, StrategyWrapper, strategy_chain

__all__ = [
    "CompressedTransport",
    "NormBounding",
    "ReplyCheckingWrapper",
    "RoundRecorder",
    "ServerStrategy",
    "StrategyWrapper",
    "UpdateValidator",
    "WeightCap",
    "build_server_strategy",
    "build_strategy",
    "strategy_chain",
    "with_compression",
    "wrap_aggregation",
]
