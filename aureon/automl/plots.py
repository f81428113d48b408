"""Optuna's optimization-history and parameter-importance plots, as PNG files in the run directory."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from aureon.exceptions import describe

HISTORY_FILE = "optimization_history.png"
IMPORTANCE_FILE = "param_importances.png"


def write_plots(study: optuna.Study, folder: Path) -> dict[str, str]:
    """Each plot's file name, or why it was not drawn (too few completed trials, ...)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    drawn: dict[str, str] = {}
    for key, name, draw, needs in (
        ("history", HISTORY_FILE, optuna_plots.plot_optimization_history, 1),
        ("importance", IMPORTANCE_FILE, optuna_plots.plot_param_importances, 2),
    ):
        if complete < needs:
            drawn[key] = f"not drawn: {complete} completed trial(s), {needs} needed"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" notes and few-trials notes on importance
                draw(study)
            figure = plt.gcf()
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            figure.savefig(Path(folder) / name, dpi=100)
            drawn[key] = name
        except Exception as error:  # a plot is a by-product: its failure must not lose the search
            drawn[key] = f"not drawn: {describe(error)}"
        finally:
            plt.close("all")
    return drawn
