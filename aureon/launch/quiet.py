"""The one place that decides what Flower, Ray, Hydra and their libraries may print.

A run's terminal shows AUREON's progress rows and its summary; everything else
(Flower's per-round INFO lines and its "fraction_evaluate is set to 0.0" notice,
Ray's start-up lines and its actors' output, the INFO lines of libraries that log
through Hydra's console handler, such as alembic's plugin set-up, and
third-party warnings) goes there only with ``verbose=true``. Hydra's log file in
the run directory keeps the INFO lines either way.

Processes started for a deployment get the same Flower settings through
``QUIET_FLOWER_ENV`` (``aureon.launch.processes.quiet_flower_env``).
"""

from __future__ import annotations

import logging
import os
import warnings

# Flower without telemetry, update checks or installing an app's dependencies at run time:
# the one list, for processes started here and for in-process simulation alike.
QUIET_FLOWER_ENV: dict[str, str] = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}

# Ray in an in-process simulation: no usage report (the machine may be offline), each
# actor's lines as they are when verbose, and the future behaviour of accelerator
# variables now, which also drops Ray's FutureWarning about it.
QUIET_RAY_ENV: dict[str, str] = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}

SIMULATION_ENV: dict[str, str] = {**QUIET_FLOWER_ENV, **QUIET_RAY_ENV}

# Libraries whose warnings are theirs to fix, not a user's to read on every run.
THIRD_PARTY_WARNINGS = ("flwr", "ray", "opacus", "torch", "hydra", "omegaconf", "kymatio", "datasets")


class _DropDeprecationNotice(logging.Filter):
    """Hide Flower's notice that its Python simulation entry point is deprecated.

    AUREON calls it on purpose (in-process Ray simulation from a Hydra job) and
    also supports ``flwr run .``; repeating the notice every run helps nobody.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "run_simulation" not in text and "deprecated feature" not in text


def set_simulation_env() -> None:
    """Flower's and Ray's settings in this process's environment (Ray's processes inherit it).

    A value the user exported already is kept.
    """
    for name, value in SIMULATION_ENV.items():
        os.environ.setdefault(name, value)


def quiet_flower(verbose: bool) -> None:
    """Flower's logger: everything (DEBUG) when verbose, else its errors only.

    Flower's warnings in a simulation repeat what AUREON's rows already say (a
    failed client, a skipped evaluation); its errors still show.
    """
    set_simulation_env()
    logger = logging.getLogger("flwr")
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR)
    logger.propagate = False
    if not any(isinstance(f, _DropDeprecationNotice) for f in logger.filters):
        logger.addFilter(_DropDeprecationNotice())


def quiet_console(verbose: bool) -> None:
    """Log handlers that write to the terminal show warnings and up unless verbose.

    Hydra's job logging sends every INFO record to the console and to the run's
    log file; only the console is turned down, so the file keeps the record.
    """
    level = logging.NOTSET if verbose else logging.WARNING
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)


def quiet_warnings(verbose: bool) -> None:
    """Third-party warnings are not shown unless verbose (AUREON's own still are)."""
    if verbose:
        return
    for module in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")


def quiet_run(*, verbose: bool) -> None:
    """Everything above, for one run in this process."""
    quiet_flower(verbose)
    quiet_console(verbose)
    quiet_warnings(verbose)


def ray_log_args(*, verbose: bool) -> dict[str, object]:
    """``ray.init`` arguments for its own logging: start-up lines and actors' output only when verbose."""
    return {
        "logging_level": logging.INFO if verbose else logging.ERROR,
        "log_to_driver": verbose,
    }
