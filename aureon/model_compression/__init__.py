"""Model compression after training: pruning, int8 quantization, distillation, compact files.

The job (``compress_run``) reads a finished run's model, compresses it and
tabulates size, accuracy and latency. Update codecs (what crosses the wire
each round) live in aureon.codecs.
"""

from aureon.model_compression.distillation import distill, student_config
from aureon.model_compression.model_job import compress_run
from aureon.model_compression.pruning import prune_global_magnitude, weight_sparsity
from aureon.model_compression.quantization import (
    load_quantized,
    quantize_dynamic_int8,
    quantize_model_int8,
    quantize_static_int8,
    save_quantized,
)
from aureon.model_compression.sparse_io import load_sparse, save_sparse

__all__ = [
    "compress_run",
    "distill",
    "load_quantized",
    "load_sparse",
    "prune_global_magnitude",
    "quantize_dynamic_int8",
    "quantize_model_int8",
    "quantize_static_int8",
    "save_quantized",
    "save_sparse",
    "student_config",
    "weight_sparsity",
]
