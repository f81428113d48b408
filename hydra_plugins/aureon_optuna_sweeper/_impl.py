"""The sweep: ask Optuna for trials, launch each as a Hydra job, tell it the job's return value.

A job that raises, exits, or returns something that is not a finite number is
a failed trial with its reason (``fail_reason`` user attribute, and
``trials.csv``); the sweep goes on. At the end the sweep directory holds
``optimization_results.yaml`` (the best parameters and value) and
``trials.csv``; AUREON's sweep summary callback adds its table of runs.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.study import StudyDirection
from optuna.trial import TrialState

from aureon.exceptions import ConfigError
from hydra_plugins.aureon_optuna_sweeper._search_space import SearchSpace, SearchSpaceError, build_search_space
from hydra_plugins.aureon_optuna_sweeper.config import DIRECTIONS

log = logging.getLogger(__name__)
FAIL_REASON = "fail_reason"
JOB_DIR = "job_dir"


def make_storage(storage: str | None) -> str | optuna.storages.BaseStorage | None:
    """None: in memory; a URL with ``://``: an RDB study; anything else: a journal file at that path."""
    if storage is None or storage == "":
        return None
    if "://" in storage:
        try:
            return optuna.storages.RDBStorage(storage)
        except Exception as error:
            raise ConfigError(
                f"hydra.sweeper.storage={storage!r}: expected a reachable database URL "
                f"(sqlite:///file.db, postgresql://...), got {type(error).__name__}: {error}"
            ) from None
    path = Path(storage).expanduser()
    if not path.parent.is_dir():
        raise ConfigError(f"hydra.sweeper.storage={storage!r}: expected a journal file in an existing folder")
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def make_sampler(sampler: Any) -> optuna.samplers.BaseSampler:
    """The configured sampler (``hydra/sweeper/sampler=tpe`` by default); must be an Optuna sampler.

    Hydra has usually built it already (it instantiates the sweeper's nested ``_target_`` nodes).
    """
    if sampler is None:
        return optuna.samplers.TPESampler(seed=0)
    built = sampler if isinstance(sampler, optuna.samplers.BaseSampler) else instantiate(sampler)
    if not isinstance(built, optuna.samplers.BaseSampler):
        raise ConfigError(f"hydra.sweeper.sampler: expected an optuna.samplers sampler, got {type(built).__qualname__}")
    return built


def parse_arguments(parser: OverridesParser, arguments: Sequence[str]) -> list[Override]:
    """Each argument parsed on its own, so a bad one is named in the error."""
    parsed = []
    for argument in arguments:
        try:
            parsed += parser.parse_overrides([argument])
        except Exception as error:
            raise SearchSpaceError(
                f"hydra.sweeper search space {argument!r}: expected key=interval(a,b), int(interval(a,b)), "
                f"tag(log, interval(a,b)), choice(...), range(...) or a plain value; "
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            ) from None
    return parsed


def objective_value(job: JobReturn) -> tuple[float | None, str | None]:
    """(value, None) for a finite numeric return; (None, reason) for a failed job or a non-number."""
    if job.status != JobStatus.COMPLETED:
        error = job._return_value
        return None, f"{type(error).__name__}: {error}"
    value = job.return_value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"the job returned {type(value).__name__} {value!r}, expected a number"
    if not math.isfinite(value):
        return None, f"the job returned {value!r}, expected a finite number"
    return float(value), None


class OptunaSweeperImpl:
    """The state of one sweep; see the module docstring."""

    def __init__(
        self,
        *,
        sampler: Any,
        direction: str,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        params: dict[str, str] | None,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ConfigError(f"hydra.sweeper.direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials must be an integer >= 1, got {n_trials!r}")
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs must be an integer >= 1, got {n_jobs!r}")
        self.sampler_config = sampler
        self.direction = direction
        self.study_name = study_name
        self.storage = storage
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def search_space(self, arguments: Sequence[str]) -> SearchSpace:
        """``params`` from the YAML first, the command line's overrides after (they win)."""
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        from_yaml = [f"{key}={value}" for key, value in self.params.items()]
        return build_search_space(parse_arguments(parser, [*from_yaml, *arguments]))

    def _composes(self, overrides: list[str]) -> str | None:
        """None if the job's config composes; else why not (the trial fails without running)."""
        assert self.hydra_context is not None and self.config is not None
        try:
            self.hydra_context.config_loader.load_sweep_config(master_config=self.config, sweep_overrides=overrides)
        except Exception as error:
            return f"the overrides do not compose: {type(error).__name__}: {error}"
        return None

    def _launch(self, batch: list[list[str]], first_index: int) -> list[JobReturn | BaseException]:
        """One JobReturn per job, or the SystemExit that ended it (an AUREON job exits 2 on a bad value).

        Jobs are launched one by one under Hydra's in-process launcher (it runs
        them one after another anyway), so one job's exit does not lose the others.
        """
        assert self.launcher is not None
        from hydra._internal.core_plugins.basic_launcher import BasicLauncher

        groups = [[job] for job in batch] if isinstance(self.launcher, BasicLauncher) else [batch]
        results: list[JobReturn | BaseException] = []
        index = first_index
        for group in groups:
            try:
                results += list(self.launcher.launch(group, initial_job_idx=index))
            except SystemExit as exit_:
                results += [exit_] * len(group)
            index += len(group)
        return results

    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        assert self.config is not None
        space = self.search_space(arguments)
        if not space.parameters:
            raise SearchSpaceError(
                "hydra.sweeper: nothing to search; give at least one key=interval(...)/choice(...)/range(...) "
                "on the command line or in hydra.sweeper.params"
            )
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = optuna.create_study(
            storage=make_storage(self.storage),
            sampler=make_sampler(self.sampler_config),
            study_name=self.study_name,
            direction=StudyDirection.MAXIMIZE if self.direction == "maximize" else StudyDirection.MINIMIZE,
            load_if_exists=True,
        )
        log.info("Optuna study %s: %s, %d trials", study.study_name, self.direction, self.n_trials)
        distributions = space.distributions()
        returns: list[list[JobReturn]] = []
        launched = 0
        while launched < self.n_trials:
            trials = [study.ask(distributions) for _ in range(min(self.n_jobs, self.n_trials - launched))]
            batch: list[list[str]] = []
            runnable = []
            for trial in trials:
                overrides = space.overrides(trial.params)
                reason = self._composes(overrides)
                if reason is None:
                    batch.append(overrides)
                    runnable.append(trial)
                else:
                    self._fail(study, trial, reason)
            outcomes = self._launch(batch, launched)
            returns.append([o for o in outcomes if isinstance(o, JobReturn)])
            for trial, outcome in zip(runnable, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    self._fail(study, trial, f"the job exited with code {getattr(outcome, 'code', outcome)}")
                    continue
                trial.set_user_attr(JOB_DIR, str(outcome.working_dir or ""))
                value, reason = objective_value(outcome)
                if value is None:
                    self._fail(study, trial, reason or "failed")
                else:
                    study.tell(trial, value)
            launched += len(trials)
        self._report(study, sweep_dir, space)
        return returns

    @staticmethod
    def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
        log.warning("trial %d failed: %s", trial.number, reason)
        trial.set_user_attr(FAIL_REASON, reason)
        study.tell(trial, state=TrialState.FAIL)

    def _report(self, study: optuna.Study, sweep_dir: Path, space: SearchSpace) -> None:
        """trials.csv, optimization_results.yaml, and the best trial on the terminal."""
        keys = [p.key for p in space.parameters]
        with (sweep_dir / "trials.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["number", "state", "value", *keys, FAIL_REASON])
            for trial in study.trials:
                writer.writerow(
                    [
                        trial.number,
                        trial.state.name,
                        "" if trial.value is None else trial.value,
                        *(trial.params.get(k, "") for k in keys),
                        trial.user_attrs.get(FAIL_REASON, ""),
                    ]
                )
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            OmegaConf.save(
                OmegaConf.create({"name": "optuna", "best_params": None, "best_value": None}),
                sweep_dir / "optimization_results.yaml",
            )
            print(f"optuna sweep: no trial completed; see {sweep_dir / 'trials.csv'}")
            return
        best = study.best_trial
        results = {"name": "optuna", "best_trial": best.number, "best_params": best.params, "best_value": best.value}
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        params = " ".join(space.overrides(best.params)[len(space.fixed) :])
        print(f"optuna sweep: best value {best.value:.6g} (trial {best.number}): {params}")
