"""Model zoo: small CNN, MLP, logistic regression and a linear head on features, built from config."""

from aureon.models.factory import build_model
from aureon.models.zoo import MLP, FeatureLinear, LogisticRegression, SmallCNN

__all__ = ["MLP", "FeatureLinear", "LogisticRegression", "SmallCNN", "build_model"]
