"""Compression: update codecs (what crosses the wire each round) and, after training,
model compression (pruning, int8 quantization, distillation)."""

from aureon.compression.client_side import UPLOAD_SEED_STREAM, received_state_dict, upload_entries
from aureon.compression.codec import Codec, Encoded
from aureon.compression.error_feedback import encode_with_feedback
from aureon.compression.fp16 import Fp16Codec
from aureon.compression.int8 import Int8Codec, dequantize_int8, quantize_int8, stochastic_round
from aureon.compression.distillation import distill, student_config
from aureon.compression.layout import Layout, TensorSpec, as_numpy, layout_of
from aureon.compression.model_job import compress_run
from aureon.compression.pruning import prune_global_magnitude, weight_sparsity
from aureon.compression.quantization import (
    load_quantized,
    quantize_dynamic_int8,
    quantize_model_int8,
    quantize_static_int8,
    save_quantized,
)
from aureon.compression.none import NoneCodec
from aureon.compression.records import from_records, is_compressed, to_records
from aureon.compression.registry import CODECS, build_codec, decode
from aureon.compression.sparse_io import load_sparse, save_sparse
from aureon.compression.topk import TopKCodec, topk_select
from aureon.compression.transport import encode_weights, weights_from_content

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
    "compress_run",
    "decode",
    "dequantize_int8",
    "distill",
    "encode_weights",
    "encode_with_feedback",
    "from_records",
    "is_compressed",
    "layout_of",
    "load_quantized",
    "load_sparse",
    "prune_global_magnitude",
    "quantize_dynamic_int8",
    "quantize_model_int8",
    "quantize_static_int8",
    "quantize_int8",
    "received_state_dict",
    "save_quantized",
    "save_sparse",
    "stochastic_round",
    "student_config",
    "to_records",
    "topk_select",
    "upload_entries",
    "weight_sparsity",
    "weights_from_content",
]
