"""Reading saved model files (torch.save) so that a damaged or mismatched one is a clean error.

``torch.load(weights_only=True)`` never runs code from the file, but on a
truncated or bit-flipped file it raises whichever error its zip reader or
unpickler hits first; and ``load_state_dict`` reports a shape mismatch as a
page of text. Both are turned into one ``ModelFileError`` naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aureon.exceptions import ModelFileError, describe

# What load_state_dict raises for a state that does not fit the module
# (quantized modules parse their entries themselves and add the others).
_MISMATCH_ERRORS = (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError)


def load_torch_file(path: Path) -> Any:
    """The object ``torch.save`` wrote to ``path``, read with ``weights_only=True``.

    Any error while deserialising is the file's fault (the set of error types
    torch's readers raise on damaged input is open-ended), so all of them
    become a ModelFileError; the original stays attached as its cause.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # A damaged header reads as an odd pickle protocol; the error below says enough.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:
        raise ModelFileError(f"{path}: not a readable torch file ({describe(err)})") from err


def check_state_dict(state: Any, path: Path) -> dict[str, torch.Tensor]:
    """``state`` as a state dict (names to tensors), or a ModelFileError naming ``path``."""
    if not isinstance(state, Mapping):
        raise ModelFileError(f"{path}: holds a {type(state).__name__}, expected a state dict")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ModelFileError(f"{path}: entry {name!r} is a {type(value).__name__}, expected a tensor under a name")
    return dict(state)


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A model's state dict saved with ``torch.save`` (a run's model.pt)."""
    return check_state_dict(load_torch_file(path), Path(path))


def _layout(value: Any) -> Any:
    """The shapes in a state-dict value: a tensor, or the tuples quantized modules store.

    Sizes of 1 are dropped: a scalar scale may be stored 0-d or 1-d, and
    load_state_dict itself still checks plain parameters exactly.
    """
    if isinstance(value, torch.Tensor):
        return tuple(size for size in value.shape if size != 1)
    if isinstance(value, (tuple, list)):
        return tuple(_layout(item) for item in value)
    return type(value).__name__


def _check_layout(model: nn.Module, state: Mapping[str, Any], path: Path) -> None:
    """Same names, same shapes: quantized modules copy packed weights without checking either."""
    expected = {name: _layout(value) for name, value in model.state_dict().items()}
    found = {name: _layout(value) for name, value in state.items()}
    wrong = sorted(set(expected) ^ set(found)) or sorted(n for n in expected if expected[n] != found[n])
    if wrong:
        shown = ", ".join(
            f"{name} {found.get(name, 'missing')} vs model {expected.get(name, 'absent')}" for name in wrong[:3]
        )
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        raise ModelFileError(f"{path}: does not fit the {type(model).__name__} the run's config builds ({shown}{more})")


def load_into(model: nn.Module, state: Mapping[str, Any], path: Path) -> nn.Module:
    """``model.load_state_dict(state)``; a state that does not fit names the file it came from."""
    _check_layout(model, state, path)
    try:
        model.load_state_dict(state)
    except _MISMATCH_ERRORS as err:
        raise ModelFileError(
            f"{path}: does not fit the {type(model).__name__} the run's config builds ({describe(err)})"
        ) from err
    return model
