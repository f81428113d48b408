"""What a client does when the server asks it to train or evaluate.

The handlers are plain functions of (message, context, config), so the
ClientApp in ``clients/`` stays a thin adapter and tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Context, Error, Message, MetricRecord, RecordDict

from aureon import keys
from aureon.compression import UPLOAD_SEED_STREAM, received_state_dict, upload_entries
from aureon.config import AureonConfig, DpSgdConfig
from aureon.data import client_indices
from aureon.features import prepare_dataset
from aureon.exceptions import PrivacyBudgetExhausted
from aureon.models import build_model
from aureon.privacy import (
    accountant_from_json,
    accountant_to_json,
    ensure_budget,
    plan_dp,
    spent_epsilon,
)
from aureon.seeding import derive_seed
from aureon.training import evaluate_model, train_model

BUDGET_EXHAUSTED_CODE = 4001


@dataclass(frozen=True)
class ClientData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int


def load_client_data(config: AureonConfig, partition_id: int, num_partitions: int) -> ClientData:
    """This client's share of the training split and the shared test split."""
    dataset = prepare_dataset(config.dataset, config.seed, config.features)
    idx = client_indices(dataset.y_train, config.partition, partition_id, num_partitions, config.seed)
    return ClientData(
        x_train=dataset.x_train[idx],
        y_train=dataset.y_train[idx],
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
    )


def _partition(context: Context) -> tuple[int, int]:
    return (
        int(context.node_config[keys.NODE_PARTITION_ID]),
        int(context.node_config[keys.NODE_NUM_PARTITIONS]),
    )


def _load_accountant_state(context: Context) -> str | None:
    record = context.state.config_records.get(keys.STATE_PRIVACY)
    if record is None:
        return None
    return str(record[keys.STATE_ACCOUNTANT])


def _save_accountant_state(context: Context, state: str) -> None:
    context.state[keys.STATE_PRIVACY] = ConfigRecord({keys.STATE_ACCOUNTANT: state})


def handle_train(msg: Message, context: Context, config: AureonConfig) -> Message:
    """Train the received global model on local data; reply with weights and metrics."""
    partition_id, num_partitions = _partition(context)
    data = load_client_data(config, partition_id, num_partitions)
    train_config = msg.content.config_records.get(keys.CONFIG, ConfigRecord())
    server_round = int(train_config.get(keys.SERVER_ROUND, 0))
    proximal_mu = float(train_config.get(keys.PROXIMAL_MU, 0.0))

    model = build_model(
        config.model, input_shape=data.input_shape, num_classes=data.num_classes, seed=config.seed
    )
    received = received_state_dict(msg.content, model.state_dict())
    model.load_state_dict(received)

    dp_plan, accountant = None, None
    if isinstance(config.privacy, DpSgdConfig):
        dp_plan = plan_dp(
            config.privacy,
            num_examples=len(data.y_train),
            batch_size=config.train.batch_size,
            local_epochs=config.train.local_epochs,
            num_rounds=config.num_rounds,
        )
        accountant = accountant_from_json(dp_plan.accountant, _load_accountant_state(context))
        try:
            ensure_budget(accountant, dp_plan)
        except PrivacyBudgetExhausted as refusal:
            return Message(Error(code=BUDGET_EXHAUSTED_CODE, reason=str(refusal)), reply_to=msg)

    result = train_model(
        model,
        data.x_train,
        data.y_train,
        config=config.train.for_round(server_round),
        seed=derive_seed(config.seed, partition_id, server_round),
        dp=dp_plan,
        accountant=accountant,
        proximal_mu=proximal_mu,
    )
    metrics: dict[str, float | int] = {
        keys.NUM_EXAMPLES: result.num_examples,
        keys.TRAIN_LOSS: result.mean_loss,
        keys.PARTITION_ID: partition_id,
    }
    if accountant is not None and dp_plan is not None:
        _save_accountant_state(context, accountant_to_json(accountant))
        metrics[keys.EPSILON] = spent_epsilon(accountant, dp_plan.target_delta)
    content = RecordDict(
        {
            **upload_entries(
                model.state_dict(),
                received,
                config=config.compression,
                state=context.state,
                seed=derive_seed(config.seed, partition_id, server_round, UPLOAD_SEED_STREAM),
            ),
            keys.METRICS: MetricRecord(metrics),
        }
    )
    return Message(content=content, reply_to=msg)


def handle_evaluate(msg: Message, context: Context, config: AureonConfig) -> Message:
    """Evaluate the received global model on the test split this client holds."""
    partition_id, num_partitions = _partition(context)
    data = load_client_data(config, partition_id, num_partitions)
    model = build_model(
        config.model, input_shape=data.input_shape, num_classes=data.num_classes, seed=config.seed
    )
    model.load_state_dict(received_state_dict(msg.content, model.state_dict()))
    result = evaluate_model(model, data.x_test, data.y_test, batch_size=config.train.eval_batch_size)
    metrics = MetricRecord(
        {
            keys.NUM_EXAMPLES: result.num_examples,
            keys.EVAL_LOSS: result.loss,
            keys.EVAL_ACCURACY: result.accuracy,
            keys.PARTITION_ID: partition_id,
        }
    )
    return Message(content=RecordDict({keys.METRICS: metrics}), reply_to=msg)
