"""Secure aggregation (SecAgg, Bonawitz et al. 2017; SecAgg+, Bell et al. 2020) for the Message API.

Pure protocol code: client and server state machines over Flower records, with
no networking. The Flower wiring lives in aureon.strategies.secure_aggregation
(server) and aureon.federated.secagg_handlers (client).
"""

from aureon.privacy.secagg.client import ClientState, SecAggClient
from aureon.privacy.secagg.errors import ImplausibleAggregate, MalformedMessage, ProtocolAbort
from aureon.privacy.secagg.params import RoundParams, SecAggSettings
from aureon.privacy.secagg.quantization import sum_error_bound
from aureon.privacy.secagg.server import Rejection, SecAggServer, SecureSum

__all__ = [
    "ClientState",
    "ImplausibleAggregate",
    "MalformedMessage",
    "ProtocolAbort",
    "Rejection",
    "RoundParams",
    "SecAggClient",
    "SecAggServer",
    "SecAggSettings",
    "SecureSum",
    "sum_error_bound",
]
