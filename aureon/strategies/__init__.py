"""Server strategies: Flower's Message-API strategies built from config, and wrappers."""

from aureon.strategies.aggregation import wrap_aggregation
from aureon.strategies.build import build_strategy
from aureon.strategies.compressed_transport import CompressedTransport, with_compression
from aureon.strategies.ledger import RoundLedger
from aureon.strategies.norm_bounding import NormBounding
from aureon.strategies.round_recorder import RoundRecorder
from aureon.strategies.update_validator import UpdateValidator
from aureon.strategies.weight_cap import WeightCap
from aureon.strategies.wrapper import StrategyWrapper

__all__ = [
    "CompressedTransport",
    "NormBounding",
    "RoundLedger",
    "RoundRecorder",
    "StrategyWrapper",
    "UpdateValidator",
    "WeightCap",
    "build_strategy",
    "with_compression",
    "wrap_aggregation",
]
