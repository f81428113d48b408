"""The schema of ``python -m simulations.compress`` (compress a finished run's model)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from aureon.config.base import require

MODEL_COMPRESSION_METHODS = ("prune", "quantize", "distill")
QUANTIZATION_SCHEMES = ("static", "dynamic")


@dataclass
class ModelCompressionJob:
    """``python -m simulations.compress``: compress a finished run's model for deployment.

    Fine-tuning and distillation use the first half of the test split (data
    the server holds, never a client's); every accuracy is measured on the
    second half.
    """

    run_dir: str = MISSING
    method: str = MISSING
    sparsity: float = 0.7
    quantization: str = "static"  # static: convs too, calibrated on server data; dynamic: Linear only
    finetune_epochs: int = 0
    finetune_lr: float = 0.01
    student_fraction: float = 0.25
    distill_epochs: int = 30
    distill_lr: float = 3e-3
    temperature: float = 4.0
    alpha: float = 0.7
    latency_rounds: int = 30
    seed: int = 0

    def validate(self) -> None:
        require(
            self.method in MODEL_COMPRESSION_METHODS,
            "method",
            self.method,
            f"one of {', '.join(map(repr, MODEL_COMPRESSION_METHODS))}",
        )
        require(0.0 <= self.sparsity < 1.0, "sparsity", self.sparsity, "in [0, 1)")
        require(
            self.quantization in QUANTIZATION_SCHEMES,
            "quantization",
            self.quantization,
            f"one of {', '.join(map(repr, QUANTIZATION_SCHEMES))}",
        )
        require(self.finetune_epochs >= 0, "finetune_epochs", self.finetune_epochs, ">= 0")
        require(self.finetune_lr > 0, "finetune_lr", self.finetune_lr, "> 0")
        require(
            0.0 < self.student_fraction < 1.0,
            "student_fraction",
            self.student_fraction,
            "in (0, 1)",
        )
        require(self.distill_epochs >= 1, "distill_epochs", self.distill_epochs, ">= 1")
        require(self.distill_lr > 0, "distill_lr", self.distill_lr, "> 0")
        require(self.temperature > 0, "temperature", self.temperature, "> 0")
        require(0.0 <= self.alpha <= 1.0, "alpha", self.alpha, "in [0, 1]")
        require(self.latency_rounds >= 1, "latency_rounds", self.latency_rounds, ">= 1")
