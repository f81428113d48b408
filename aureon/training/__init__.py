"""Training and evaluation loops; DP-SGD (Opacus) is an option of the same loop."""

from aureon.training.loops import EvalResult, TrainResult, evaluate_model, train_model

__all__ = ["EvalResult", "TrainResult", "evaluate_model", "train_model"]
