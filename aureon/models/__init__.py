"""Model zoo: small CNN, MLP and logistic regression, built from config."""

from aureon.models.factory import build_model
from aureon.models.zoo import MLP, LogisticRegression, SmallCNN

__all__ = ["MLP", "LogisticRegression", "SmallCNN", "build_model"]
