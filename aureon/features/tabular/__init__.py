"""Tabular feature engineering from federated statistics: clients send aggregates, never rows.

The package imports nothing on its own: serving a tabular run needs only
``pipeline`` (numpy and pandas), not the fit's Flower and SecAgg machinery.
"""
