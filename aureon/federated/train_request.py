"""What a server's train request asks of this client, read from its ConfigRecord ``config``.

AUREON's client serves AUREON's ServerApp and any Flower ServerApp, so it
honours the keys Flower's strategies and quickstarts customarily send, on top
of its own config (``HONOURED_KEYS`` lists them; every other key is ignored):

- ``server-round``: the round (seeds, the client's own ``train.lr_decay``
  schedule, the ledger entry). Flower's strategies always send it.
- ``num-rounds``: how many rounds the DP plan spreads ``privacy.target_epsilon``
  over; without it, the client's own ``num_rounds``.
- ``lr``: this round's learning rate; replaces ``train.lr`` and its
  ``train.lr_decay`` schedule (a server that sends it owns the schedule).
- ``local-epochs``: this round's local epochs; replaces ``train.local_epochs``.
- ``proximal-mu``: FedProx's pull toward the global model.
- ``aureon-run-key``: AUREON's experiment id (the ledger's run); without it,
  one key per Flower run.

Privacy: the DP plan (noise multiplier, steps per round) is computed from what
will run, that is with the server's ``local-epochs`` and ``num-rounds``, and
the round is then charged against the run's ``privacy.target_epsilon`` and the
client's floor like any other: a server that asks for more epochs or fewer
rounds gets more noise or a refusal, never more epsilon. ``target_epsilon``,
``target_delta``, the accountant and the floor come only from the client's own
config and node config; no key here can change them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from flwr.app import ConfigRecord, Context, Message

from aureon import keys
from aureon.config import MAX_NUM_ROUNDS, TrainConfig
from aureon.exceptions import ConfigError

HONOURED_KEYS = (
    keys.SERVER_ROUND,
    keys.NUM_ROUNDS,
    keys.LR,
    keys.LOCAL_EPOCHS,
    keys.PROXIMAL_MU,
    keys.RUN_KEY,
)


class TrainRequestError(ConfigError):
    """A value in the server's train config that this client cannot act on."""


def _fail(key: str, value: object, expected: str) -> TrainRequestError:
    return TrainRequestError(f"the server's train config {key!r} must be {expected}, got {value!r}")


def _integer(record: Mapping[str, object], key: str, *, minimum: int, maximum: int | None = None) -> int | None:
    if key not in record:
        return None
    value = record[key]
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, value, expected)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise _fail(key, value, expected)
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        raise _fail(key, value, expected)
    return number


def _number(record: Mapping[str, object], key: str, *, positive: bool) -> float | None:
    if key not in record:
        return None
    value = record[key]
    expected = "a finite number > 0" if positive else "a finite number >= 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(key, value, expected)
    if value < 0 or (positive and value == 0):
        raise _fail(key, value, expected)
    return float(value)


@dataclass(frozen=True)
class TrainRequest:
    """The server's train config, checked; ``None`` where the server left the client's own value."""

    server_round: int = 0
    num_rounds: int | None = None
    lr: float | None = None
    local_epochs: int | None = None
    proximal_mu: float = 0.0
    run_key: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> TrainRequest:
        """Read the honoured keys; a value of the wrong kind or range is a TrainRequestError naming it."""
        run_key = record.get(keys.RUN_KEY, "")
        if not isinstance(run_key, str):
            raise _fail(keys.RUN_KEY, run_key, "a string")
        return cls(
            server_round=_integer(record, keys.SERVER_ROUND, minimum=0) or 0,
            num_rounds=_integer(record, keys.NUM_ROUNDS, minimum=1, maximum=MAX_NUM_ROUNDS),
            lr=_number(record, keys.LR, positive=True),
            local_epochs=_integer(record, keys.LOCAL_EPOCHS, minimum=1),
            proximal_mu=_number(record, keys.PROXIMAL_MU, positive=False) or 0.0,
            run_key=run_key,
        )

    @classmethod
    def from_message(cls, msg: Message) -> TrainRequest:
        """The request a train message carries (an absent ``config`` record asks for nothing)."""
        return cls.from_record(msg.content.config_records.get(keys.CONFIG, ConfigRecord()))

    def train_config(self, own: TrainConfig) -> TrainConfig:
        """The settings this round trains with: the client's own, with the server's values on top."""
        effective = own.for_round(self.server_round)
        if self.lr is not None:
            effective = replace(effective, lr=self.lr)
        if self.local_epochs is not None:
            effective = replace(effective, local_epochs=self.local_epochs)
        return effective

    def rounds(self, own: int) -> int:
        """The number of rounds the DP plan covers: the server's ``num-rounds``, else ``own``."""
        return own if self.num_rounds is None else self.num_rounds

    def run(self, context: Context) -> str:
        """The experiment this round is charged to in the client's ledger and state file."""
        return self.run_key or f"flower-run-{context.run_id}"
