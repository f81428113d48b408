"""Codecs by name: building an encoder from config, finding the decoder for a payload."""

from __future__ import annotations

import numpy as np

from aureon.codecs.codec import Codec, Encoded
from aureon.codecs.fp16 import Fp16Codec
from aureon.codecs.int8 import Int8Codec
from aureon.codecs.layout import Layout
from aureon.codecs.none import NoneCodec
from aureon.codecs.topk import TopKCodec

CODECS: dict[str, type[Codec]] = {
    NoneCodec.name: NoneCodec,
    Fp16Codec.name: Fp16Codec,
    Int8Codec.name: Int8Codec,
    TopKCodec.name: TopKCodec,
}


def build_codec(name: str, *, seed: int, topk_ratio: float = 0.01) -> Codec:
    """The codec called ``name``; ``seed`` feeds stochastic rounding, ``topk_ratio`` top-k."""
    if name == Int8Codec.name:
        return Int8Codec(seed=seed)
    if name == TopKCodec.name:
        return TopKCodec(ratio=topk_ratio)
    if name in CODECS:
        return CODECS[name]()
    raise ValueError(f"codec must be one of {sorted(CODECS)}, got {name!r}")


def decode(encoded: Encoded, layout: Layout) -> dict[str, np.ndarray]:
    """Decode a payload with the codec it names (decoding needs no seed or ratio)."""
    codec = CODECS.get(encoded.codec)
    if codec is None:
        raise ValueError(f"payload names codec {encoded.codec!r}; this build knows {sorted(CODECS)}")
    return codec.decode(encoded, layout)
