"""The shape of a model's tensors, and packing its floating tensors into one flat vector.

Codecs work on one flat vector so that a message carries two or three arrays
instead of two or three per tensor: every Flower ``Array`` costs a few hundred
bytes of headers, which would eat most of int8's 4x on a small model. Both
ends know the layout (the server from the global model, a client from its own
model), so it never travels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: its shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def floating(self) -> bool:
        return np.issubdtype(np.dtype(self.dtype), np.floating)


@dataclass(frozen=True)
class Layout:
    """The ordered tensors of a state dict; floating ones are the ones codecs compress."""

    tensors: tuple[TensorSpec, ...]

    @property
    def floating(self) -> tuple[TensorSpec, ...]:
        return tuple(t for t in self.tensors if t.floating)

    @property
    def other(self) -> tuple[TensorSpec, ...]:
        return tuple(t for t in self.tensors if not t.floating)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Element counts of the floating tensors, in order (the flat vector's segments)."""
        return tuple(t.size for t in self.floating)


def layout_of(arrays: Mapping[str, np.ndarray]) -> Layout:
    """The layout of a state dict given as name -> array."""
    return Layout(tuple(TensorSpec(name, tuple(np.shape(a)), str(np.asarray(a).dtype)) for name, a in arrays.items()))


def check_matches(arrays: Mapping[str, np.ndarray], layout: Layout, *, where: str) -> None:
    """Raise ValueError unless ``arrays`` has exactly the names and shapes of ``layout``."""
    expected = {t.name: t.shape for t in layout.tensors}
    received = {name: tuple(np.shape(a)) for name, a in arrays.items()}
    if expected != received:
        missing = sorted(set(expected) - set(received))
        extra = sorted(set(received) - set(expected))
        reshaped = sorted(n for n in set(expected) & set(received) if expected[n] != received[n])
        raise ValueError(
            f"{where}: tensors do not match the model's layout "
            f"(missing {missing}, unexpected {extra}, other shape {reshaped})"
        )


def flatten(arrays: Mapping[str, np.ndarray], layout: Layout) -> np.ndarray:
    """The floating tensors of ``arrays`` concatenated in layout order, as float32."""
    parts = [np.asarray(arrays[t.name], dtype=np.float32).ravel() for t in layout.floating]
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts)


def unflatten(flat: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Split a flat vector back into the floating tensors of ``layout`` (their own dtypes)."""
    total = sum(layout.sizes)
    if flat.shape != (total,):
        raise ValueError(f"a flat vector of {total} elements was expected for this model, got shape {flat.shape}")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in layout.floating:
        out[spec.name] = flat[offset : offset + spec.size].reshape(spec.shape).astype(spec.dtype)
        offset += spec.size
    return out


def segment_bounds(sizes: tuple[int, ...]) -> np.ndarray:
    """Start offsets of each segment and the total, e.g. (2, 3) -> [0, 2, 5]."""
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))]).astype(np.int64)


def as_numpy(state: Mapping[str, object]) -> dict[str, np.ndarray]:
    """A torch state dict (or a dict of arrays) as name -> numpy array, order kept."""
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        detach = getattr(value, "detach", None)
        out[name] = detach().cpu().numpy() if detach is not None else np.asarray(value)
    return out
