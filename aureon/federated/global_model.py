"""Load the global model a server sent into this client's model, or say exactly why it does not fit.

A server built for another model or dataset sends tensors of other names or
shapes; ``load_state_dict`` would fail deep in torch with a message about
"size mismatch" for every tensor. The client answers instead with one line
naming the first tensor that differs and both shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from flwr.app import RecordDict
from torch import nn

from aureon.codecs import received_state_dict
from aureon.exceptions import AureonError


class ModelMismatch(AureonError):
    """The arrays a server sent do not fit the model this client builds from its config."""


def _shape(shape: Sequence[int]) -> list[int]:
    return [int(n) for n in shape]


def first_mismatch(received: Mapping[str, Sequence[int]], expected: Mapping[str, Sequence[int]]) -> str | None:
    """The first difference between two name -> shape maps (in ``expected``'s order), or None."""
    for name, shape in expected.items():
        if name not in received:
            return f"it sent no tensor {name!r} (expected {_shape(shape)})"
        if _shape(received[name]) != _shape(shape):
            return f"tensor {name!r} has shape {_shape(received[name])}, expected {_shape(shape)}"
    extra = [name for name in received if name not in expected]
    if extra:
        return f"it sent tensor {extra[0]!r} {_shape(received[extra[0]])}, which this model does not have"
    return None


def load_global_model(content: RecordDict, model: nn.Module, *, described_as: str) -> dict[str, torch.Tensor]:
    """Load the weights in ``content`` into ``model`` and return them (the reference for an upload delta).

    ``described_as`` names the client's model and dataset in the error, so a
    reader knows which two configs disagree.
    """
    template = model.state_dict()
    hint = f"this client builds {described_as}; give the server and its clients the same model and dataset"
    try:
        received = received_state_dict(content, template)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelMismatch(f"the server's model does not fit this client's: {error}; {hint}") from None
    mismatch = first_mismatch(
        {name: tuple(value.shape) for name, value in received.items()},
        {name: tuple(value.shape) for name, value in template.items()},
    )
    if mismatch is not None:
        raise ModelMismatch(f"the server's model does not fit this client's: {mismatch}; {hint}")
    model.load_state_dict(received)
    return received
