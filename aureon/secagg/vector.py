"""A model's ArrayRecord as the flat real vector that secure aggregation sums, and back.

Both ends derive the layout from the global model the server sent, so it never
travels. Every tensor takes part (integer ones too, as float64), and float64
keeps the quantization error, not the conversion, as the only loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from flwr.app import Array, ArrayRecord


@dataclass(frozen=True)
class VectorLayout:
    """Ordered names, shapes and dtypes of the tensors of one ArrayRecord."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]

    @classmethod
    def of(cls, arrays: ArrayRecord) -> VectorLayout:
        return cls(
            names=tuple(arrays.keys()),
            shapes=tuple(tuple(a.shape) for a in arrays.values()),
            dtypes=tuple(a.dtype for a in arrays.values()),
        )

    @property
    def size(self) -> int:
        return int(sum(int(np.prod(shape, dtype=np.int64)) for shape in self.shapes))

    def flatten(self, arrays: ArrayRecord) -> npt.NDArray[np.float64]:
        """The tensors in layout order as one float64 vector; ValueError if they do not fit."""
        if set(arrays.keys()) != set(self.names):
            missing = sorted(set(self.names) - set(arrays.keys()))
            extra = sorted(set(arrays.keys()) - set(self.names))
            raise ValueError(f"tensors do not match the model (missing {missing}, unexpected {extra})")
        parts: list[npt.NDArray[np.float64]] = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            value = np.asarray(arrays[name].numpy())
            if tuple(value.shape) != shape:
                raise ValueError(f"tensor {name!r} has shape {list(value.shape)}, expected {list(shape)}")
            parts.append(value.astype(np.float64).ravel())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    def unflatten(self, flat: npt.NDArray[np.float64]) -> ArrayRecord:
        """An ArrayRecord with the layout's tensors cut from ``flat``, cast to their dtypes."""
        if flat.size != self.size:
            raise ValueError(f"the vector has {flat.size} values, the layout {self.size}")
        record = ArrayRecord()
        start = 0
        for name, shape, dtype in zip(self.names, self.shapes, self.dtypes, strict=True):
            count = int(np.prod(shape, dtype=np.int64))
            part = flat[start : start + count].reshape(shape)
            if not np.issubdtype(np.dtype(dtype), np.floating):
                part = np.rint(part)
            record[name] = Array(np.ascontiguousarray(part.astype(dtype)))
            start += count
        return record
