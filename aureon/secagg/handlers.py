"""ClientApp handlers for the secure-aggregation stages (message types in aureon.keys).

Each handler rebuilds the client's protocol state from ``context.state``,
lets the state machine (aureon.secagg.client_protocol) answer, and saves the
state again. A refused request becomes an Error reply: to the server, the
client dropped out, which the protocol tolerates down to its threshold.

The last setup accepted (round and seed commitment) is also kept apart,
under ``keys.STATE_SECAGG_PROGRESS``: it holds no secret, survives a refusal
and the loss of this round's secrets, and is what a restarted client reads
back to refuse a second setup of a round it already took part in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from aureon import keys
from aureon.config import AureonConfig
from aureon.exceptions import SecureAggregationError
from aureon.federated.client_state import TrainHandler, train_with_persisted_state
from aureon.federated.faults import train_with_faults
from aureon.secagg import ClientState, SecAggClient, messages
from aureon.secagg.errors import MalformedMessage
from aureon.secagg.vector import VectorLayout

SECAGG_REFUSED_CODE: Final = 4101

ConfigSource = Callable[[Context], AureonConfig]


@dataclass(frozen=True)
class StateKeys:
    """Where in ``context.state`` one sequence of protocol runs keeps its secrets and its progress.

    Each sequence numbers its rounds on its own (training's, the tabular statistics'),
    so each needs its own progress record.
    """

    secrets: str
    progress: str


TRAINING: Final = StateKeys(keys.STATE_SECAGG, keys.STATE_SECAGG_PROGRESS)


def load(context: Context, store: StateKeys = TRAINING) -> SecAggClient:
    """The client's protocol state, with the progress kept apart merged in."""
    client = SecAggClient(state=ClientState.from_record(context.state.config_records.get(store.secrets)))
    _remember(context, client, store)
    return client


def _remember(context: Context, client: SecAggClient, store: StateKeys = TRAINING) -> None:
    """Merge the kept progress record (it may come from an earlier process) into ``client``."""
    try:
        client.remember(context.state.config_records.get(store.progress))
    except MalformedMessage as error:
        raise SecureAggregationError(f"the kept secure-aggregation progress is unreadable: {error}") from error


def save(context: Context, client: SecAggClient, store: StateKeys = TRAINING) -> None:
    context.state[store.secrets] = client.state.to_record()
    context.state[store.progress] = client.progress()


def refuse(msg: Message, context: Context, error: Exception, store: StateKeys = TRAINING) -> Message:
    """Forget this round's secrets (not the last setup accepted) and tell the server why."""
    kept = SecAggClient(state=ClientState())
    _remember(context, kept, store)
    save(context, kept, store)
    reason = f"secure aggregation refused: {error}"
    return Message(Error(code=SECAGG_REFUSED_CODE, reason=reason), reply_to=msg)


Step = Callable[[SecAggClient, ConfigRecord], ConfigRecord]


def _stage(msg: Message, context: Context, step: Step, store: StateKeys = TRAINING) -> Message:
    try:
        client = load(context, store)
        reply = step(client, messages.protocol_record(msg.content))
    except SecureAggregationError as error:
        return refuse(msg, context, error, store)
    save(context, client, store)
    return Message(RecordDict({keys.SECAGG: reply}), reply_to=msg)


def handle_setup(msg: Message, context: Context, store: StateKeys = TRAINING) -> Message:
    """Stages 0-1: accept parameters, advertise public keys."""
    return _stage(msg, context, lambda client, request: client.setup(request), store)


def handle_plain_stage(msg: Message, context: Context, stage: str, store: StateKeys) -> Message:
    """Stage 2 (``share_keys``) or 4 (``unmask``) alone, for runs that never advertise keys ahead."""
    if stage not in ("share_keys", "unmask"):
        raise ValueError(f"stage must be 'share_keys' or 'unmask', got {stage!r}")
    return _stage(msg, context, lambda client, request: getattr(client, stage)(request), store)


def handle_share_keys(msg: Message, context: Context) -> Message:
    """Stage 2: send encrypted shares of the self-mask seed and the mask key.

    When this client advertised its keys ahead (with its last masked input),
    the round's parameters (stage 0) come with this request.
    """
    setup = msg.content.config_records.get(keys.SECAGG_SETUP_RECORD)

    def step(client: SecAggClient, request: ConfigRecord) -> ConfigRecord:
        if setup is not None:
            client.setup(setup, prepared=True)
        return client.share_keys(request)

    return _stage(msg, context, step)


def handle_unmask(msg: Message, context: Context) -> Message:
    """Stage 4: reveal the shares that let the server remove the masks.

    The request may carry the next round's stages 0 and 2 (for the keys this
    client advertised with its masked input); their reply rides back with
    this one, so the next round starts with training. A refusal there is
    reported in that record and does not spoil this round's unmasking.
    """
    reply = _stage(msg, context, lambda client, request: client.unmask(request))
    records = msg.content.config_records
    setup, share_keys = records.get(keys.SECAGG_SETUP_RECORD), records.get(keys.SECAGG_SHARE_KEYS_RECORD)
    if reply.has_error() or setup is None or share_keys is None:
        return reply
    try:
        client = load(context)
        client.setup(setup, prepared=True)
        reply.content[keys.SECAGG_SHARES_RECORD] = client.share_keys(share_keys)
    except SecureAggregationError as error:
        reply.content[keys.SECAGG_SHARES_RECORD] = ConfigRecord({messages.REFUSED: str(error)})
        return reply
    save(context, client)
    return reply


def handle_secagg_train(msg: Message, context: Context, config: AureonConfig) -> Message:
    """Stage 3: check the routed shares, train (DP-SGD if configured), reply with the masked update.

    The update is the trained weights minus the received ones; the client's
    number of examples is its weight, multiplied in before masking and summed
    securely, so it is not sent in the clear. The round trained must be the
    protocol's round. If the server asks (``next-round``), the reply also
    advertises fresh keys for that round.
    """
    request = messages.protocol_record(msg.content)
    try:
        client = load(context)
        client.receive_shares(request)
        _check_training_round(msg, client.state.server_round)
    except SecureAggregationError as error:
        return refuse(msg, context, error)
    trained = train_with_persisted_state(msg, context, config, train=_keeping_progress(client))
    if trained.has_error():
        save(context, client)
        return trained
    metrics = next(iter(trained.content.metric_records.values()))
    received = msg.content.array_records[keys.ARRAYS]
    layout = VectorLayout.of(received)
    try:
        _remember(context, client)  # the persisted state restored for training may be newer
        update = layout.flatten(trained.content.array_records[keys.ARRAYS]) - layout.flatten(received)
        masked = client.mask(update, num_examples=_num_examples(metrics))
    except (SecureAggregationError, ValueError) as error:
        return refuse(msg, context, error)
    plain = MetricRecord({k: v for k, v in metrics.items() if k != keys.NUM_EXAMPLES})
    content = RecordDict(
        {
            keys.SECAGG: ConfigRecord({messages.ROUND: client.state.server_round, messages.INDEX: client.state.index}),
            keys.SECAGG_MASKED: ArrayRecord({messages.MASKED: Array(masked)}),
            keys.METRICS: plain,
        }
    )
    if messages.NEXT_ROUND in request:
        try:
            next_round = messages.read_int(request, messages.NEXT_ROUND, low=0, high=1 << 62)
            content[keys.SECAGG_NEXT] = client.prepare(next_round)
        except SecureAggregationError:
            pass  # no keys ahead: the next round sets up afresh
    save(context, client)
    return Message(content=content, reply_to=msg)


def _num_examples(metrics: MetricRecord) -> int:
    """The example count training reported: the weight this client's update gets, masked."""
    value = metrics[keys.NUM_EXAMPLES]
    if isinstance(value, list):
        raise TypeError(f"metric {keys.NUM_EXAMPLES!r} of the training reply must be a number, got a list")
    return int(value)


def _check_training_round(msg: Message, protocol_round: int) -> None:
    """Refuse to train a round other than the one set up: the masked input must be of that round."""
    train_config = msg.content.config_records.get(keys.CONFIG)
    if train_config is None or keys.SERVER_ROUND not in train_config:
        return
    trained_round = train_config[keys.SERVER_ROUND]
    if trained_round != protocol_round:
        raise SecureAggregationError(
            f"the train request is for round {trained_round!r}, the secure-aggregation setup for round {protocol_round}"
        )


def _keeping_progress(client: SecAggClient) -> TrainHandler:
    """``train_with_faults``, after writing the merged progress into ``context.state``.

    Persisted state restored for training may hold an older progress record;
    writing the merged one first makes the state saved after training carry
    the setup this round was trained under.
    """

    def train(msg: Message, context: Context, config: AureonConfig) -> Message:
        _remember(context, client)
        context.state[keys.STATE_SECAGG_PROGRESS] = client.progress()
        return train_with_faults(msg, context, config)

    return train


def _action(message_type: str) -> str:
    """The action part of a "<category>.<action>" message type."""
    return message_type.split(".", 1)[1]


def register_secagg_handlers(app: ClientApp, config_source: ConfigSource) -> None:
    """Register the four stage handlers on ``app`` (train.secagg needs the run's config)."""
    app.query(_action(keys.SECAGG_SETUP))(handle_setup)
    app.query(_action(keys.SECAGG_SHARE_KEYS))(handle_share_keys)
    app.query(_action(keys.SECAGG_UNMASK))(handle_unmask)

    @app.train(_action(keys.SECAGG_TRAIN))
    def secagg_train(msg: Message, context: Context) -> Message:
        return handle_secagg_train(msg, context, config_source(context))
