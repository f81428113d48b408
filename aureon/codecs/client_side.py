"""A client's half of update compression: decode what arrived, encode what goes back.

Error feedback needs memory across rounds: the residual is an ArrayRecord in
the client's ``context.state``, next to the privacy accountant, so it lives as
long as the client does (a simulated node or a SuperNode process).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from aureon import keys
from aureon.codecs.error_feedback import encode_with_feedback
from aureon.codecs.layout import as_numpy
from aureon.codecs.payload import to_records
from aureon.codecs.registry import build_codec
from aureon.codecs.transport import delta_of, weights_from_content
from aureon.config import CompressionConfig

if TYPE_CHECKING:  # torch at run time only where tensors are made: importing codecs stays light
    import torch

UPLOAD_SEED_STREAM = 0xC0DE  # derive_seed path element: rounding noise apart from training's


def received_state_dict(content: RecordDict, template: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The global model in a train or evaluate message, ready for ``load_state_dict``."""
    import torch

    weights = weights_from_content(content, as_numpy(template))
    return {name: torch.from_numpy(np.array(value, copy=True)) for name, value in weights.items()}


def load_residual(state: RecordDict) -> dict[str, np.ndarray] | None:
    """The error-feedback residual saved by an earlier round, if any."""
    record = state.array_records.get(keys.STATE_RESIDUAL)
    if record is None:
        return None
    return {name: array.numpy() for name, array in record.items()}


def save_residual(state: RecordDict, residual: Mapping[str, np.ndarray]) -> None:
    state[keys.STATE_RESIDUAL] = ArrayRecord(
        {name: Array(np.ascontiguousarray(value)) for name, value in residual.items()}
    )


def upload_entries(
    local: Mapping[str, torch.Tensor],
    received: Mapping[str, torch.Tensor],
    *,
    config: CompressionConfig,
    state: RecordDict,
    seed: int,
) -> dict[str, ArrayRecord | ConfigRecord]:
    """RecordDict entries with this client's trained model for the reply.

    With ``upload=none`` the weights go as they are. Otherwise the delta
    against ``received`` is encoded; the model has already been trained with
    DP noise, so this is post-processing and costs no privacy.
    """
    if config.upload == "none":
        return {keys.ARRAYS: ArrayRecord(dict(local))}
    codec = build_codec(config.upload, seed=seed, topk_ratio=config.topk_ratio)
    delta = delta_of(as_numpy(local), as_numpy(received))
    if config.error_feedback and not codec.lossless:
        encoded, residual = encode_with_feedback(codec, delta, load_residual(state))
        save_residual(state, residual)
    else:
        encoded = codec.encode(delta)
    return to_records(encoded, "delta")
