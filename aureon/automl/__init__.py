"""AutoML with Optuna: model and hyperparameter search on tables (``search``), and federated HPO.

Nothing heavy is imported here: ``from aureon.automl.search import run_table_search``.
"""
