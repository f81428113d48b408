"""The centralized baseline: the same model and trainer on the pooled training data."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aureon.config import AureonConfig
from aureon.features import prepare_dataset
from aureon.federated.server import new_tracker
from aureon.models import build_model
from aureon.privacy.ledger import PrivacyLedger
from aureon.privacy.private_training import PrivateTraining
from aureon.seeding import derive_seed
from aureon.tracking import ClientRound, RoundRecord
from aureon.training import evaluate_model, train_model

POOLED = -1  # the partition id under which the pooled data is reported
POOLED_DATA = "pooled"  # the in-memory ledger's key (the baseline keeps no ledger on disk)
SEED_STREAM = 1 << 30  # keeps the baseline's seeds apart from every client's


def _noise_seed(config: AureonConfig, server_round: int) -> int | None:
    """The benchmark opt-in seed of the DP noise; None (local entropy) otherwise."""
    dp_sgd = config.privacy.dp_sgd()
    if dp_sgd is not None and dp_sgd.reproducible_noise:
        return derive_seed(config.seed, SEED_STREAM, server_round) + 1
    return None


def run_centralized(config: AureonConfig, run_dir: Path) -> dict[str, Any]:
    """Train on all training examples; one "round" is ``train.local_epochs`` epochs."""
    dataset = prepare_dataset(config.dataset, config.seed, config.features)
    model = build_model(
        config.model,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        seed=config.seed,
    )
    objective = dataset.objective()
    tracker = new_tracker(config, run_dir, model, test_metric=objective.metric)
    initial = evaluate_model(model, dataset.x_test, dataset.y_test, objective=objective)
    tracker.log_initial(initial.score, initial.loss)

    private, ledger = None, PrivacyLedger(data=POOLED_DATA)
    dp_sgd = config.privacy.dp_sgd()
    if dp_sgd is not None:
        private = PrivateTraining.calibrated(
            dp_sgd,
            num_examples=len(dataset.y_train),
            train=config.train,
            num_rounds=config.num_rounds,
        )

    for server_round in range(1, config.num_rounds + 1):
        started = time.monotonic()
        this_round = None
        if private is not None:
            this_round = replace(private, noise_seed=_noise_seed(config, server_round))
            ledger = this_round.charge(ledger, run=POOLED_DATA, server_round=server_round)
        trained = train_model(
            model,
            dataset.x_train,
            dataset.y_train,
            config=config.train.for_round(server_round),
            seed=derive_seed(config.seed, SEED_STREAM, server_round),
            private=this_round,
            criterion=objective.criterion(),
        )
        result = evaluate_model(
            model, dataset.x_test, dataset.y_test, batch_size=config.train.eval_batch_size, objective=objective
        )
        epsilon = None if private is None else private.epsilon(ledger)
        tracker.log_round(
            RoundRecord(
                round=server_round,
                test_accuracy=result.score,
                test_loss=result.loss,
                seconds=time.monotonic() - started,
                clients=[
                    ClientRound(
                        partition_id=POOLED,
                        node_id=0,
                        num_examples=trained.num_examples,
                        train_loss=trained.mean_loss,
                        epsilon=epsilon,
                        bytes_up=0,
                        bytes_down=0,
                    )
                ],
            )
        )
    return tracker.finish(model.state_dict())
