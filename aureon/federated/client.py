"""What a client does when the server asks it to train or evaluate.

The handlers are plain functions of (message, context, config), so the
ClientApp in ``clients/`` stays a thin adapter and tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict

from aureon import keys
from aureon.codecs import UPLOAD_SEED_STREAM, upload_entries
from aureon.config import AureonConfig
from aureon.data import Dataset, client_indices
from aureon.data.fingerprint import dataset_fingerprint
from aureon.data.partition_cache import PartitionCache
from aureon.exceptions import DataError, LedgerError, PrivacyBudgetExhausted, PrivacyRefused
from aureon.features import SPLITS, partition_cache_dir, prepare_dataset, take_rows
from aureon.features.tabular.own_table import per_client_tables
from aureon.federated.global_model import ModelMismatch, load_global_model
from aureon.federated.refusals import BUDGET_EXHAUSTED_CODE as BUDGET_EXHAUSTED_CODE
from aureon.federated.refusals import PRIVACY_REFUSED_CODE as PRIVACY_REFUSED_CODE
from aureon.federated.refusals import refusal
from aureon.federated.train_request import TrainRequest, TrainRequestError
from aureon.models import build_model
from aureon.privacy.canaries import CanaryPlan, plan_client_canaries
from aureon.privacy.canary_clients import CanaryClientPlan
from aureon.privacy.floor import PrivacyFloor
from aureon.privacy.ledger import LedgerStore
from aureon.privacy.private_training import PrivateTraining
from aureon.seeding import derive_seed
from aureon.training import evaluate_model, train_model
from aureon.training.objectives import Objective


@dataclass(frozen=True)
class ClientData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    objective: Objective  # the dataset's: cross-entropy and accuracy, or MSE and R^2


def _canaries(config: AureonConfig, dataset: Dataset, num_partitions: int) -> CanaryPlan | CanaryClientPlan:
    return plan_client_canaries(
        config.audit, labels=dataset.y_train, num_classes=dataset.num_classes, num_partitions=num_partitions
    )


def load_client_data(config: AureonConfig, partition_id: int, num_partitions: int, *, test: bool = True) -> ClientData:
    """This client's share of the training split and (``test``) the shared test split.

    The partition's indices come from the on-disk partition cache (computed once
    per machine: ``prepare_client_partitions``). An IID partition is a view of
    the memory-mapped features, not a copy; training gathers its batches from it.
    With ``audit.canaries`` set, the canaries are held out of every partition and this
    client's included ones (aureon/privacy/canaries.py) are appended, wrong labels and all;
    with ``audit.kind=canary_clients`` the last partitions are canary clients, holding
    their canary examples only (aureon/privacy/canary_clients.py).
    """
    dataset = prepare_dataset(config.dataset, config.seed, config.features, splits=SPLITS if test else ("train",))
    canaries = _canaries(config, dataset, num_partitions)
    kept = canaries.kept_rows()
    regular = canaries.regular_clients
    idx = (
        kept[
            client_indices(
                dataset.y_train[kept],
                config.partition,
                partition_id,
                regular,
                config.seed,
                cache_dir=partition_cache_dir(config.features),
            )
        ]
        if partition_id < regular
        else np.zeros(0, dtype=np.int64)
    )
    canary_rows, canary_labels = canaries.of_partition(partition_id)
    return ClientData(
        x_train=take_rows(dataset.x_train, np.concatenate([idx, canary_rows])),
        y_train=np.concatenate([dataset.y_train[idx], canary_labels]),
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        objective=dataset.objective(),
    )


def prepare_client_partitions(config: AureonConfig) -> None:
    """Compute the clients' partition indices once, before the clients start (the simulation's driver).

    Then no client imports flwr-datasets or computes the split: each reads its
    own indices from the partition cache.
    """
    dataset = prepare_dataset(config.dataset, config.seed, config.features, splits=("train",))
    canaries = _canaries(config, dataset, config.num_clients)
    kept = canaries.kept_rows()
    PartitionCache(partition_cache_dir(config.features)).ensure(
        dataset.y_train[kept], config.partition, canaries.regular_clients, config.seed
    )


def own_table_data(config: AureonConfig, context: Context) -> ClientData:
    """``dataset.per_client``: this client's own file, split and transformed by the pipeline the server sent."""
    from aureon.features.tabular.own_table import own_dataset, run_pipeline

    dataset = own_dataset(config.dataset, config.seed, run_pipeline(context))
    return ClientData(
        x_train=dataset.x_train,
        y_train=dataset.y_train,
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        objective=dataset.objective(),
    )


def _data(config: AureonConfig, context: Context, *, test: bool) -> ClientData:
    if per_client_tables(config.dataset):
        return own_table_data(config, context)
    partition_id, num_partitions = _partition(context)
    return load_client_data(config, partition_id, num_partitions, test=test)


def _partition(context: Context) -> tuple[int, int]:
    return (
        int(context.node_config[keys.NODE_PARTITION_ID]),
        int(context.node_config[keys.NODE_NUM_PARTITIONS]),
    )


def client_state_dir(context: Context) -> Path:
    """Where this client keeps what must outlive a round: its privacy ledger, its last reply.

    Set by the client's side only: ``python -m clients --state-dir`` in
    deployment, the run directory in simulation.
    """
    state_dir = str(context.node_config.get(keys.NODE_STATE_DIR, "") or "")
    if not state_dir:
        raise LedgerError(
            "this client has no state directory (node config 'state-dir'): DP-SGD needs one to keep its privacy ledger"
        )
    return Path(state_dir)


def _described(config: AureonConfig) -> str:
    return f"{config.model._target_} for dataset {config.dataset.name!r}"


def handle_train(msg: Message, context: Context, config: AureonConfig) -> Message:
    """Train the received global model on local data; reply with weights and metrics.

    The server's train config is read by ``TrainRequest``, which lists the
    keys honoured (its ``lr``, ``local-epochs`` and ``num-rounds`` override
    the client's own).
    Under DP-SGD the request is first checked against the client's privacy
    floor and the round, planned from what will actually run, is charged to
    the client's ledger before any private data is touched; the reply then
    carries only the DP release (the noised weights) and public figures: no
    training loss. The reply is known by its message's source node; its
    ``aureon-client`` ConfigRecord names the partition only as a label for results.json.
    """
    partition_id, _ = _partition(context)
    floor = PrivacyFloor.from_node_config(context.node_config)
    try:
        request = TrainRequest.from_message(msg)
        floor.check_request(config.privacy)
    except (TrainRequestError, PrivacyRefused) as error:
        return refusal(msg, error)
    server_round = request.server_round
    train_config = request.train_config(config.train)
    try:
        data = _data(config, context, test=False)
    except DataError as error:  # per-client tables: no pipeline for this run, or a table that does not fit it
        return refusal(msg, error)

    model = build_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes, seed=config.seed)
    try:
        received = load_global_model(msg.content, model, described_as=_described(config))
    except ModelMismatch as mismatch:
        return refusal(msg, mismatch)

    private, epsilon = None, None
    if (dp_sgd := config.privacy.dp_sgd()) is not None:
        private = PrivateTraining.calibrated(
            dp_sgd,
            num_examples=len(data.y_train),
            train=train_config,
            num_rounds=request.rounds(config.num_rounds),
            noise_seed=(
                derive_seed(config.seed, partition_id, server_round) + 1 if dp_sgd.reproducible_noise else None
            ),
        )
        store = LedgerStore(client_state_dir(context))
        data_key = dataset_fingerprint(config.dataset)
        try:
            ledger = private.charge(
                store.load(data_key), run=request.run(context), server_round=server_round, floor=floor
            )
        except (PrivacyBudgetExhausted, PrivacyRefused) as error:
            return refusal(msg, error)
        store.save(ledger)  # charged before any private data is used
        epsilon = private.epsilon(ledger)

    result = train_model(
        model,
        data.x_train,
        data.y_train,
        config=train_config,
        seed=derive_seed(config.seed, partition_id, server_round),
        private=private,
        proximal_mu=request.proximal_mu,
        criterion=data.objective.criterion(),
    )
    metrics: dict[str, float | int] = {keys.NUM_EXAMPLES: result.num_examples}
    if epsilon is None:
        metrics[keys.TRAIN_LOSS] = result.mean_loss
    else:
        metrics[keys.EPSILON] = epsilon
    content = RecordDict(
        {
            **upload_entries(
                model.state_dict(),
                received,
                config=config.compression,
                state=context.state,
                seed=derive_seed(config.seed, partition_id, server_round, UPLOAD_SEED_STREAM),
            ),
            keys.METRICS: MetricRecord(metrics),  # type: ignore[arg-type]
            keys.CLIENT_LABEL: ConfigRecord({keys.LABEL_PARTITION_ID: partition_id}),
        }
    )
    return Message(content=content, reply_to=msg)


def handle_evaluate(msg: Message, context: Context, config: AureonConfig) -> Message:
    """Evaluate the received global model on the test split this client holds.

    The answer is not differentially private, so a client whose floor requires
    DP does not give it (AUREON's server evaluates on its own test split).
    """
    if PrivacyFloor.from_node_config(context.node_config).require_dp:
        return refusal(
            msg,
            PrivacyRefused(
                "this client requires DP and does not answer evaluation requests: their metrics "
                "are computed from its data without noise"
            ),
        )
    try:
        data = _data(config, context, test=True)
    except DataError as error:
        return refusal(msg, error)
    model = build_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes, seed=config.seed)
    try:
        load_global_model(msg.content, model, described_as=_described(config))
    except ModelMismatch as mismatch:
        return refusal(msg, mismatch)
    result = evaluate_model(
        model, data.x_test, data.y_test, batch_size=config.train.eval_batch_size, objective=data.objective
    )
    metrics = MetricRecord(
        {
            keys.NUM_EXAMPLES: result.num_examples,
            keys.EVAL_LOSS: result.loss,
            keys.EVAL_ACCURACY if result.metric == "accuracy" else f"eval-{result.metric}": result.score,
        }
    )
    return Message(content=RecordDict({keys.METRICS: metrics}), reply_to=msg)
