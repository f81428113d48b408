"""How a client refuses a request: one error code per kind of refusal and the reason in one line.

A refusal is an answer, not a crash: the server logs and records the reason,
and a user reading it knows which setting to change.
"""

from __future__ import annotations

from flwr.app import Error, Message

from aureon.exceptions import ConfigError, PrivacyBudgetExhausted, PrivacyRefused
from aureon.federated.global_model import ModelMismatch
from aureon.federated.train_request import TrainRequestError

# Flower's own error codes are below 1000; the secure-aggregation handlers use 41xx.
BUDGET_EXHAUSTED_CODE = 4001
PRIVACY_REFUSED_CODE = 4002  # the request is below the client's own privacy floor
TRAIN_REQUEST_CODE = 4003  # a value in the server's train config this client cannot act on
MODEL_MISMATCH_CODE = 4004  # the server's arrays do not fit the client's model
CLIENT_CONFIG_CODE = 4005  # the client has no usable config of its own (aureon.federated.apps)

REFUSALS = (PrivacyBudgetExhausted, PrivacyRefused, ModelMismatch, ConfigError)


def refusal_code(error: Exception) -> int:
    """The error code a client replies with for ``error``."""
    if isinstance(error, PrivacyBudgetExhausted):
        return BUDGET_EXHAUSTED_CODE
    if isinstance(error, PrivacyRefused):
        return PRIVACY_REFUSED_CODE
    if isinstance(error, TrainRequestError):
        return TRAIN_REQUEST_CODE
    if isinstance(error, ModelMismatch):
        return MODEL_MISMATCH_CODE
    return CLIENT_CONFIG_CODE


def refusal(msg: Message, error: Exception) -> Message:
    """An error reply to ``msg`` carrying ``error``'s message as its reason."""
    return Message(Error(code=refusal_code(error), reason=str(error)), reply_to=msg)
