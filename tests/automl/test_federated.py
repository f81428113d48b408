"""Federated HPO: trials are federated DP simulations; the tuned result's epsilon includes the tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aureon.automl.federated import CLIENTS_DIR, client_ledgers, run_federated_search
from aureon.config.automl_federated import FederatedSearchConfig
from aureon.data.fingerprint import dataset_fingerprint
from aureon.exceptions import ConfigError
from aureon.launch.run_config import compose_config

SMALL = ["dataset=digits", "num_clients=2", "num_rounds=2", "train.batch_size=32"]


@pytest.mark.integration
def test_three_private_trials_complete_and_the_reported_epsilon_includes_the_tuning(tmp_path: Path) -> None:
    config = compose_config(SMALL)
    search = FederatedSearchConfig(space={"train.lr": [0.1, 1.0], "train.batch_size": [32, 64]})
    document = run_federated_search(config, tmp_path, search=search, known_num_trials=3)

    trials = document["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    for trial in trials:  # each trial ran with its own settings, at the fixed privacy target
        ran = (Path(trial["dir"]) / "config.yaml").read_text()
        assert f"batch_size: {trial['params']['train.batch_size']}" in ran
        assert trial["epsilon"] <= config.privacy.target_epsilon * 1.01
        assert len(trial["runs"]) == 1
    best = max(trials, key=lambda t: t["test_accuracy"])
    assert document["best"]["number"] == best["number"]

    # The clients are the same clients in every trial: each ledger holds all three trials' runs.
    ledgers = client_ledgers(tmp_path / CLIENTS_DIR, dataset_fingerprint(config.dataset))
    assert len(ledgers) == config.num_clients
    for ledger in ledgers.values():
        assert {entry.run for entry in ledger.entries} == {t["runs"][0] for t in trials}

    privacy = document["privacy"]
    coordinator, released = privacy["against_coordinator"], privacy["released_model"]
    single = released["single_trial_epsilon"]
    assert single == pytest.approx(config.privacy.target_epsilon, rel=0.05)  # one trial: the run's own budget
    assert released["epsilon"] > single  # tuning on private data is paid for, even by the released model alone
    assert coordinator["epsilon"] > 1.5 * single  # the coordinator saw three trials' updates: they compose
    assert coordinator["trials_charged"] == 3
    assert "coordinator" in coordinator["protects"] and "only the released" in released["protects"]
    assert privacy["pruning"].startswith("none")
    assert json.loads((tmp_path / "results.json").read_text()) == document


@pytest.mark.integration
def test_a_public_trial_that_lags_is_pruned_and_only_the_final_run_costs_the_clients(tmp_path: Path) -> None:
    config = compose_config(["dataset=mnist_subset", "num_clients=2", "num_rounds=2", "train.batch_size=64"])
    search = FederatedSearchConfig(
        tune_on="public",
        public_dataset="digits",
        n_trials=2,
        space={"train.lr": [1e-4, 4.0]},
        enqueue=[{"train.lr": 2.0}, {"train.lr": 1e-4}],  # a sound start, then a rate far too small to learn
        pruner_startup_trials=1,
    )
    document = run_federated_search(config, tmp_path, search=search)

    good, bad = document["trials"]
    assert good["state"] == "COMPLETE" and good["rounds_run"] == 2
    assert bad["state"] == "PRUNED" and bad["rounds_run"] == 1
    assert "pruned after round 1" in bad["pruned"]
    ran = json.loads((Path(bad["dir"]) / "results.json").read_text())
    assert ran["finished"] is False and "pruned after round 1" in ran["reason"]
    assert document["best"]["number"] == good["number"]
    assert document["final"]["test_accuracy"] > 0.5

    ledgers = client_ledgers(tmp_path / CLIENTS_DIR, dataset_fingerprint(config.dataset))
    assert all(len({e.run for e in ledger.entries}) == 1 for ledger in ledgers.values())  # the final run only
    privacy = document["privacy"]
    assert privacy["against_coordinator"]["epsilon"] == pytest.approx(config.privacy.target_epsilon, rel=0.05)
    assert privacy["released_model"]["epsilon"] == privacy["against_coordinator"]["epsilon"]
    assert privacy["pruning"].startswith("median pruner")


def test_a_search_space_that_cannot_be_searched_is_refused_before_any_trial(tmp_path: Path) -> None:
    config = compose_config(SMALL)
    with pytest.raises(ConfigError, match=r"automl\.federated\.space\.train\.lr must be \[low, high\]"):
        run_federated_search(config, tmp_path, search=FederatedSearchConfig(space={"train.lr": [1.0, 1.0]}))
    with pytest.raises(ConfigError, match=r"automl\.federated\.tune_on must be one of"):
        run_federated_search(config, tmp_path, search=FederatedSearchConfig(tune_on="server"))
    with pytest.raises(ConfigError, match=r"needs a federated strategy and privacy=dp_sgd"):
        run_federated_search(compose_config([*SMALL, "privacy=none"]), tmp_path)
    with pytest.raises(ConfigError, match=r"automl\.federated\.strategies must name strategy options .*'fedfoo'"):
        run_federated_search(config, tmp_path, search=FederatedSearchConfig(strategies=["fedfoo"]))
    with pytest.raises(ConfigError, match=r"public_dataset must differ from the clients' dataset"):
        run_federated_search(config, tmp_path, search=FederatedSearchConfig(tune_on="public", public_dataset="digits"))
    folder = tmp_path / "mnist"  # the files are never read: the check comes before any trial
    folder.mkdir()
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            (folder / f"{split}-{kind}-ubyte").touch()
    mnist = compose_config(["dataset=mnist", f"dataset.path={folder}"])
    with pytest.raises(
        ConfigError, match=r"public_dataset must hold none of the clients' examples, got 'mnist_subset'"
    ):
        run_federated_search(
            mnist, tmp_path, search=FederatedSearchConfig(tune_on="public", public_dataset="mnist_subset")
        )
    with pytest.raises(ConfigError, match=r"enqueue must be empty for tune_on=private"):
        run_federated_search(config, tmp_path, search=FederatedSearchConfig(enqueue=[{"train.lr": 0.5}]))
    assert not (tmp_path / "trials").exists() and not (tmp_path / CLIENTS_DIR).exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("automl.federated.tune_on=server", r"^automl.federated.tune_on must be one of \['private', 'public'\]"),
        ("automl.federated.pruner=asha", r"^automl.federated.pruner must be one of"),
        (
            "automl.federated.enqueue=[{train.lr:9.0}]",
            r"^automl.federated.enqueue must be empty for tune_on=private",
        ),
        (
            "automl.federated.space={train.lr:[0.1,1.0]}",
            None,
        ),
    ],
)
def test_the_federated_search_is_set_through_the_automl_group(override: str, message: str | None) -> None:
    if message is None:
        config = compose_config([override, "automl.mode=federated", "automl.federated.tune_on=public"])
        assert config.automl.federated.space["train.lr"] == [0.1, 1.0]  # one range narrowed, the others kept
        assert config.automl.federated.space["train.lr_decay"] == [0.5, 1.0]
        assert config.automl.federated.tune_on == "public"
        return
    with pytest.raises(ConfigError, match=message):
        compose_config([override])


def test_an_enqueued_start_outside_the_space_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"automl.federated.enqueue\[0\].train.lr must be a number in"):
        FederatedSearchConfig(tune_on="public", space={"train.lr": [0.1, 1.0]}, enqueue=[{"train.lr": 5.0}]).validate()
