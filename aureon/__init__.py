"""AUREON: federated learning with differential privacy on Flower's Message API."""

__version__ = "0.1.0"
