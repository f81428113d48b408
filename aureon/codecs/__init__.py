"""Update codecs: what crosses the wire each round (both directions), and the client's half.

Importing this package stays light (numpy and flwr.app): it pulls in no
dataset, feature, training or ``torch.ao`` code, so the server side and tools
that only move weights do not pay for them. After-training model compression
(pruning, quantization, distillation) lives in aureon.model_compression.
"""

from aureon.codecs.client_side import UPLOAD_SEED_STREAM, received_state_dict, upload_entries
from aureon.codecs.codec import Codec, Encoded
from aureon.codecs.error_feedback import encode_with_feedback
from aureon.codecs.fp16 import Fp16Codec
from aureon.codecs.int8 import Int8Codec, dequantize_int8, quantize_int8, stochastic_round
from aureon.codecs.layout import Layout, TensorSpec, as_numpy, layout_of
from aureon.codecs.none import NoneCodec
from aureon.codecs.payload import from_records, is_compressed, to_records
from aureon.codecs.registry import CODECS, build_codec, decode
from aureon.codecs.topk import TopKCodec, topk_select
from aureon.codecs.transport import encode_weights, weights_from_content

__all__ = [
    "CODECS",
    "Codec",
    "Encoded",
    "Fp16Codec",
    "Int8Codec",
    "Layout",
    "NoneCodec",
    "TensorSpec",
    "TopKCodec",
    "UPLOAD_SEED_STREAM",
    "as_numpy",
    "build_codec",
    "decode",
    "dequantize_int8",
    "encode_weights",
    "encode_with_feedback",
    "from_records",
    "is_compressed",
    "layout_of",
    "quantize_int8",
    "received_state_dict",
    "stochastic_round",
    "to_records",
    "topk_select",
    "upload_entries",
    "weights_from_content",
]
