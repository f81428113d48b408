"""Errors of the secure-aggregation protocol, split by who must act on them."""

from __future__ import annotations

from aureon.exceptions import SecureAggregationError


class MalformedMessage(SecureAggregationError):
    """A protocol message is missing a field or carries a value of the wrong kind or size.

    The server drops the sender for the round (as if it had gone offline); a
    client refuses the request.
    """


class ProtocolAbort(SecureAggregationError):
    """A client refuses a request that would break the protocol's guarantees."""


class ImplausibleAggregate(SecureAggregationError):
    """The unmasked sum lies outside what any set of honest inputs can produce.

    Masks hide every single input, so the server cannot find the culprit; it
    can only refuse the sum (the round keeps the previous model).
    """
