"""Where a study lives: Optuna's journal file in the run directory, or a database URL.

The journal file is safe for several processes on one machine (file locks);
a database (``postgresql://...``) shares one study between machines. Either
is opened here, once per process, and a URL that cannot be reached fails with
the key and the reason before any trial runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from aureon.exceptions import ConfigError, describe

JOURNAL_FILE = "optuna_journal.log"
CONNECT_TIMEOUT_S = 5


def storage_url(storage: str | None, run_dir: Path) -> str:
    """The study's address for every worker: ``journal:<file>`` or the database URL as given."""
    return f"journal:{Path(run_dir).resolve() / JOURNAL_FILE}" if storage is None else storage


def open_storage(url: str) -> BaseStorage:
    """Open ``url`` (from ``storage_url``); an unreachable database is a ConfigError naming automl.storage."""
    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        return RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=False)
    except Exception as error:  # SQLAlchemy's connection, driver and URL errors alike
        raise ConfigError(
            f"automl.storage must be a database URL this machine can reach and write to, got {redact(url)!r}: "
            f"{describe(error)}"
        ) from error


def redact(url: str) -> str:
    """``url`` without its password, for messages and results.json."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def open_study(url: str, *, study_name: str, seed: int, pruner_startup_trials: int) -> optuna.Study:
    """The shared study (created by the first process), with this process's seeded TPE sampler."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # multivariate, group: stable for years
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=10)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=pruner_startup_trials, n_warmup_steps=0)
    return optuna.create_study(
        storage=open_storage(url),
        study_name=study_name,
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
