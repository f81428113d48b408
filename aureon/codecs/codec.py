"""The contract every update codec follows, and the encoded form that crosses the wire."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from aureon.codecs.layout import Layout, check_matches, flatten, layout_of, unflatten

RAW_PREFIX = "raw."  # non-floating tensors (counters, masks) travel as they are


@dataclass(frozen=True)
class Encoded:
    """A codec's output: a few arrays and scalars, as Flower will carry them.

    ``arrays`` becomes an ArrayRecord and ``meta`` (with the codec's name)
    a ConfigRecord; see aureon.codecs.payload.
    """

    codec: str
    arrays: dict[str, np.ndarray]
    meta: dict[str, int | float | str] = field(default_factory=dict)


class Codec(ABC):
    """Encodes a state dict (name -> array) into compact arrays, and back.

    Floating tensors are packed into one flat vector and compressed per tensor
    (each keeps its own scale or its own share of top-k); other tensors travel
    unchanged. Decoding needs the layout, which both ends hold.
    """

    name: ClassVar[str]
    lossless: ClassVar[bool] = False

    def encode(self, arrays: Mapping[str, np.ndarray]) -> Encoded:
        layout = layout_of(arrays)
        payload = self.encode_flat(flatten(arrays, layout), layout.sizes)
        for spec in layout.other:
            payload[RAW_PREFIX + spec.name] = np.asarray(arrays[spec.name])
        return Encoded(codec=self.name, arrays=payload)

    @classmethod
    def decode(cls, encoded: Encoded, layout: Layout) -> dict[str, np.ndarray]:
        if encoded.codec != cls.name:
            raise ValueError(f"{cls.__name__} cannot decode a payload encoded by codec {encoded.codec!r}")
        flat = cls.decode_flat(encoded.arrays, layout.sizes)
        out = unflatten(flat, layout)
        for spec in layout.other:
            key = RAW_PREFIX + spec.name
            if key not in encoded.arrays:
                raise ValueError(f"codec {cls.name!r}: payload lacks tensor {spec.name!r}")
            out[spec.name] = np.asarray(encoded.arrays[key])
        ordered = {t.name: out[t.name] for t in layout.tensors}
        check_matches(ordered, layout, where=f"codec {cls.name!r}")
        return ordered

    @abstractmethod
    def encode_flat(self, flat: np.ndarray, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Compress a float32 vector made of segments of ``sizes`` elements."""

    @classmethod
    @abstractmethod
    def decode_flat(cls, arrays: Mapping[str, np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
        """Rebuild the float32 vector from what ``encode_flat`` produced."""


def payload_array(arrays: Mapping[str, np.ndarray], key: str, codec: str) -> np.ndarray:
    """``arrays[key]``, or a ValueError naming the codec and the missing key."""
    if key not in arrays:
        raise ValueError(f"codec {codec!r}: payload lacks array {key!r}, has {sorted(arrays)}")
    return np.asarray(arrays[key])
