"""Error feedback: what a lossy codec drops this round is added to the next round's update.

With residual e_0 = 0 and, each round, c_t = u_t + e_{t-1}, sent_t = decode(encode(c_t)),
e_t = c_t - sent_t, the decoded updates sum to sum(u_t) - e_T: nothing is lost,
only delayed. That is what lets top-k send 1% of an update per round and still
converge like the dense run (Stich et al., 2018; Karimireddy et al., 2019).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aureon.codecs.codec import Codec, Encoded
from aureon.codecs.layout import layout_of


def encode_with_feedback(
    codec: Codec,
    update: Mapping[str, np.ndarray],
    residual: Mapping[str, np.ndarray] | None,
) -> tuple[Encoded, dict[str, np.ndarray]]:
    """Encode ``update + residual``; return the payload and the new residual.

    The residual covers floating tensors only (other tensors travel exactly).
    A residual whose names or shapes differ from the update's (the model
    changed) is an error rather than being silently dropped.
    """
    layout = layout_of(update)
    corrected: dict[str, np.ndarray] = {}
    for spec in layout.tensors:
        value = np.asarray(update[spec.name])
        if spec.floating and residual is not None:
            if spec.name not in residual or np.shape(residual[spec.name]) != spec.shape:
                raise ValueError(
                    f"error feedback: the stored residual has no tensor {spec.name!r} of "
                    f"shape {spec.shape}; it was saved for a different model"
                )
            value = value.astype(np.float32) + np.asarray(residual[spec.name], dtype=np.float32)
        corrected[spec.name] = value
    encoded = codec.encode(corrected)
    sent = type(codec).decode(encoded, layout)
    new_residual = {
        spec.name: (np.asarray(corrected[spec.name], dtype=np.float32) - sent[spec.name]).astype(np.float32)
        for spec in layout.floating
    }
    return encoded, new_residual
