"""Secure aggregation (SecAgg, Bonawitz et al. 2017; SecAgg+, Bell et al. 2020) for the Message API.

The package's top level is pure protocol code: client and server state machines
over Flower records (client_protocol, server_protocol, messages), with no
networking. The Flower wiring lives beside it: strategy (the server's strategy
wrapper) and handlers (the ClientApp's stage handlers); import those modules
directly.
"""

from aureon.secagg.client_protocol import ClientState, SecAggClient
from aureon.secagg.errors import ImplausibleAggregate, MalformedMessage, ProtocolAbort
from aureon.secagg.fixed_point import sum_error_bound
from aureon.secagg.params import RoundParams, SecAggSettings
from aureon.secagg.server_protocol import Rejection, SecAggServer, SecureSum

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
