"""``compression`` group: the update codecs applied each round, one per direction."""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import MISSING

from aureon.config.base import require
from aureon.config.registry import register

UPLOAD_CODECS = ("none", "fp16", "int8", "topk")
DOWNLOAD_CODECS = ("none", "fp16", "int8")


@dataclass
class CompressionConfig:
    """What crosses the wire each round: one codec per direction (aureon.codecs).

    ``upload`` compresses each client's update (local minus received weights),
    after DP noise: post-processing, no extra privacy cost. ``download``
    compresses the global model the server sends. ``error_feedback`` keeps
    what a lossy upload codec dropped on the client and adds it next round.
    """

    name: str = MISSING
    upload: str = "none"
    download: str = "none"
    topk_ratio: float = 0.01
    error_feedback: bool = True

    @property
    def active(self) -> bool:
        return self.upload != "none" or self.download != "none"

    def validate(self) -> None:
        require(
            self.upload in UPLOAD_CODECS,
            "compression.upload",
            self.upload,
            f"one of {', '.join(map(repr, UPLOAD_CODECS))}",
        )
        require(
            self.download in DOWNLOAD_CODECS,
            "compression.download",
            self.download,
            f"one of {', '.join(map(repr, DOWNLOAD_CODECS))} (top-k would drop most of "
            "the global model's weights; it compresses client updates only)",
        )
        require(
            math.isfinite(self.topk_ratio) and 0.0 < self.topk_ratio <= 1.0,
            "compression.topk_ratio",
            self.topk_ratio,
            "in (0, 1]",
        )


@register("compression", "none")
@dataclass
class NoCompressionConfig(CompressionConfig):
    name: str = "none"


@register("compression", "fp16")
@dataclass
class Fp16CompressionConfig(CompressionConfig):
    name: str = "fp16"
    upload: str = "fp16"
    download: str = "fp16"


@register("compression", "int8")
@dataclass
class Int8CompressionConfig(CompressionConfig):
    name: str = "int8"
    upload: str = "int8"
    download: str = "int8"


@register("compression", "topk")
@dataclass
class TopKCompressionConfig(CompressionConfig):
    name: str = "topk"
    upload: str = "topk"
    download: str = "fp16"
    topk_ratio: float = 0.01
