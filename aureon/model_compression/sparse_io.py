"""Saving a pruned model so that its file really shrinks: bitmask + non-zero values.

torch's own sparse layouts cost more than they save at the sparsities that
keep accuracy: COO stores an int64 index per dimension per value (36 bytes per
non-zero of a conv weight), CSR an int64 column index (12 bytes). A bitmask
costs 1 bit per weight plus 4 bytes per kept value: at 70% sparsity, about
1.3 bytes per weight instead of 4. Each tensor is stored whichever way is
smaller, so dense tensors (biases) stay dense.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aureon.exceptions import ModelFileError
from aureon.model_compression.model_io import load_torch_file

FORMAT = "aureon-bitmask-v1"


def _bitmask_bytes(tensor: torch.Tensor) -> int:
    return (tensor.numel() + 7) // 8 + int((tensor != 0).sum()) * tensor.element_size()


def pack_sparse(state: Mapping[str, torch.Tensor]) -> dict[str, object]:
    """A picklable-by-torch dict: each floating tensor as bitmask + values when that is smaller."""
    tensors: dict[str, dict[str, object]] = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        dense_bytes = tensor.numel() * tensor.element_size()
        if tensor.is_floating_point() and _bitmask_bytes(tensor) < dense_bytes:
            flat = tensor.reshape(-1)
            keep = (flat != 0).numpy()
            tensors[name] = {
                "shape": list(tensor.shape),
                "mask": torch.from_numpy(np.packbits(keep)),
                "values": flat[torch.from_numpy(keep)].clone(),
            }
        else:
            tensors[name] = {"dense": tensor.clone()}
    return {"format": FORMAT, "tensors": tensors}


def _fail(source: str, what: str) -> ModelFileError:
    """The one error format of this reader: ``<file>: <what>``."""
    return ModelFileError(f"{source}: {what}")


def _shape(source: str, name: str, entry: Mapping[str, Any]) -> tuple[int, ...]:
    """The stored shape: a list of non-negative integers."""
    shape = entry.get("shape")
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _fail(source, f"tensor {name!r} has shape {shape!r}, expected a list of sizes >= 0")
    return tuple(shape)


def _unpack_bitmask(source: str, name: str, entry: Mapping[str, Any]) -> torch.Tensor:
    """One bitmask entry back to a dense tensor, every size checked against the others."""
    shape = _shape(source, name, entry)
    numel = math.prod(shape)
    mask, values = entry.get("mask"), entry.get("values")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.uint8 or mask.dim() != 1:
        raise _fail(source, f"tensor {name!r}: mask must be a 1-D uint8 tensor")
    if mask.numel() != (numel + 7) // 8:
        raise _fail(source, f"tensor {name!r}: mask has {mask.numel()} bytes, shape {shape} needs {(numel + 7) // 8}")
    if not isinstance(values, torch.Tensor) or not values.is_floating_point() or values.dim() != 1:
        raise _fail(source, f"tensor {name!r}: values must be a 1-D floating tensor")
    keep = np.unpackbits(mask.numpy(), count=numel).astype(bool)
    if int(keep.sum()) != values.numel():
        raise _fail(source, f"tensor {name!r}: mask keeps {int(keep.sum())} values, file holds {values.numel()}")
    flat = torch.zeros(numel, dtype=values.dtype)
    flat[torch.from_numpy(keep)] = values
    return flat.reshape(shape)


def unpack_sparse(packed: Mapping[str, object], source: str = "sparse state") -> dict[str, torch.Tensor]:
    """The dense state dict ``pack_sparse`` stored; ``source`` names the file in errors."""
    if not isinstance(packed, Mapping) or packed.get("format") != FORMAT:
        found = packed.get("format") if isinstance(packed, Mapping) else type(packed).__name__
        raise _fail(source, f"not an {FORMAT} file: format is {found!r}")
    tensors = packed.get("tensors")
    if not isinstance(tensors, Mapping):
        raise _fail(source, "holds no 'tensors' mapping")
    state: dict[str, torch.Tensor] = {}
    for name, entry in tensors.items():
        if not isinstance(name, str) or not isinstance(entry, Mapping):
            raise _fail(source, f"entry {name!r} is not a named mapping")
        if "dense" in entry:
            if not isinstance(entry["dense"], torch.Tensor):
                raise _fail(source, f"tensor {name!r}: dense value is not a tensor")
            state[name] = entry["dense"]
        else:
            state[name] = _unpack_bitmask(source, name, entry)
    return state


def save_sparse(state: Mapping[str, torch.Tensor], path: Path) -> int:
    """Write the bitmask format to ``path``; return the file's size in bytes."""
    torch.save(pack_sparse(state), path)
    return Path(path).stat().st_size


def load_sparse(path: Path) -> dict[str, torch.Tensor]:
    """Read a file written by ``save_sparse`` back into a dense state dict (ModelFileError if damaged)."""
    return unpack_sparse(load_torch_file(path), source=str(path))
