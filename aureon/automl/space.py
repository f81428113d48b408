"""The search space: which model family, its hyperparameters and its preprocessing, as a Pipeline.

Each trial picks a family, then that family's parameters (named
``<family>.<parameter>``, so TPE models each family's parameters apart) and a
preprocessing: imputation of numeric columns, scaling (where the model cares),
and one-hot encoding of categorical columns. Ranges come from
``AutoMLConfig.bounds``; the config has already refused empty ones.
"""

from __future__ import annotations

from typing import Any

import optuna
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, RobustScaler, StandardScaler

from aureon.config.automl import DEFAULT_SPACE, INTEGER_PARAMS, LOG_SCALE, AutoMLConfig

# Families whose predictions change with the scale of a feature: they always get a scaler.
SCALE_SENSITIVE = ("linear", "svm", "knn", "mlp")
TREES = ("random_forest", "extra_trees", "hist_gradient_boosting")


def _number(trial: optuna.Trial, config: AutoMLConfig, family: str, name: str) -> float | int:
    low, high = config.bounds(family, name)
    key, log = f"{family}.{name}", (family, name) in LOG_SCALE
    if (family, name) in INTEGER_PARAMS:
        return trial.suggest_int(key, int(low), int(high), log=log)
    return trial.suggest_float(key, low, high, log=log)


def suggest(trial: optuna.Trial, config: AutoMLConfig, *, task: str) -> dict[str, Any]:
    """The trial's choices: ``family``, preprocessing, and the family's parameters by short name."""
    family = str(trial.suggest_categorical("family", list(config.families)))
    params: dict[str, Any] = {"family": family}
    params["impute"] = trial.suggest_categorical("impute", ["mean", "median"])
    if family in SCALE_SENSITIVE:
        params["scale"] = trial.suggest_categorical(f"{family}.scale", ["standard", "robust"])
    else:
        params["scale"] = "none"
    for name in DEFAULT_SPACE[family]:
        if task == "classification" and (family, name) in _REGRESSION_ONLY:
            continue
        params[name] = _number(trial, config, family, name)
    if family in ("random_forest", "extra_trees"):
        params["max_features"] = trial.suggest_categorical(f"{family}.max_features", ["sqrt", "0.5", "1.0"])
    if family == "knn":
        params["weights"] = trial.suggest_categorical("knn.weights", ["uniform", "distance"])
    return params


_REGRESSION_ONLY = {("linear", "l1_ratio"), ("svm", "epsilon")}


def _model(family: str, params: dict[str, Any], *, task: str, seed: int) -> Any:
    classify = task == "classification"
    if family == "linear":
        from sklearn.linear_model import ElasticNet, LogisticRegression

        if classify:
            return LogisticRegression(C=1.0 / params["alpha"], max_iter=2000)
        return ElasticNet(alpha=params["alpha"], l1_ratio=params["l1_ratio"], max_iter=5000)
    if family in ("random_forest", "extra_trees"):
        from sklearn import ensemble

        kind = {"random_forest": "RandomForest", "extra_trees": "ExtraTrees"}[family]
        cls = getattr(ensemble, f"{kind}{'Classifier' if classify else 'Regressor'}")
        features = params["max_features"]
        return cls(
            n_estimators=params["n_estimators"],
            max_depth=params["max_depth"],
            min_samples_leaf=params["min_samples_leaf"],
            max_features=features if features == "sqrt" else float(features),
            random_state=seed,
            n_jobs=1,
        )
    if family == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return cls(
            learning_rate=params["learning_rate"],
            max_iter=params["max_iter"],
            max_leaf_nodes=params["max_leaf_nodes"],
            min_samples_leaf=params["min_samples_leaf"],
            l2_regularization=params["l2_regularization"],
            early_stopping=False,
            random_state=seed,
        )
    if family == "svm":
        from sklearn.svm import SVC, SVR

        if classify:
            return SVC(C=params["C"], gamma=params["gamma"])
        return SVR(C=params["C"], gamma=params["gamma"], epsilon=params["epsilon"])
    if family == "knn":
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsClassifier if classify else KNeighborsRegressor
        return cls(n_neighbors=params["n_neighbors"], weights=params["weights"])
    if family == "mlp":
        from aureon.automl.mlp import TorchMLP

        return TorchMLP(
            task=task,
            width=params["width"],
            depth=params["depth"],
            lr=params["lr"],
            epochs=params["epochs"],
            batch_size=params["batch_size"],
            seed=seed,
        )
    raise ValueError(f"unknown model family {family!r}")


def preprocessing(
    params: dict[str, Any], *, numeric: tuple[str, ...], categorical: tuple[str, ...]
) -> ColumnTransformer:
    """Numeric columns imputed (and scaled), categorical ones imputed and one-hot encoded."""
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=params["impute"]))]
    if params["scale"] == "standard":
        numeric_steps.append(("scale", StandardScaler()))
    elif params["scale"] == "robust":
        numeric_steps.append(("scale", RobustScaler()))
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numeric", Pipeline(numeric_steps), list(numeric)))
    if categorical:
        encode = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        parts.append(("categorical", encode, list(categorical)))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def build_pipeline(
    params: dict[str, Any], *, task: str, numeric: tuple[str, ...], categorical: tuple[str, ...], seed: int
) -> Pipeline:
    """The unfitted Pipeline (preprocessing, then the model) that ``params`` describe."""
    prep = preprocessing(params, numeric=numeric, categorical=categorical)
    return Pipeline([("prep", prep), ("model", _model(params["family"], params, task=task, seed=seed))])


def params_of(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A finished trial's choices in ``suggest``'s form (short names), to rebuild its pipeline."""
    family = trial.params["family"]
    params: dict[str, Any] = {"family": family, "impute": trial.params["impute"], "scale": "none"}
    for key, value in trial.params.items():
        if key.startswith(f"{family}."):
            params[key.split(".", 1)[1]] = value
    return params


# Library defaults worth trying before any sampled trial: on small tables they are
# usually within a few points of the best, so the search has a sound incumbent early.
_DEFAULTS: dict[str, dict[str, float]] = {
    "hist_gradient_boosting": {
        "learning_rate": 0.1,
        "max_iter": 100,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 1e-8,
    },
    "random_forest": {"n_estimators": 200, "max_depth": 30, "min_samples_leaf": 1},
}


def default_trials(config: AutoMLConfig, *, task: str) -> list[dict[str, Any]]:
    """Parameters (Optuna's names) of the default gradient boosting and random forest, within the searched ranges."""
    trials = []
    for family, values in _DEFAULTS.items():
        if family not in config.families:
            continue
        params: dict[str, Any] = {"family": family, "impute": "median"}
        for name, value in values.items():
            low, high = config.bounds(family, name)
            clipped = min(max(value, low), high)
            params[f"{family}.{name}"] = int(clipped) if (family, name) in INTEGER_PARAMS else clipped
        if family == "random_forest":
            params["random_forest.max_features"] = "sqrt" if task == "classification" else "1.0"
        trials.append(params)
    return trials
