"""Model compression after training: pruning, int8 quantization, distillation, compact files.

The job (``compress_run``) reads a finished run's model, compresses it and
tabulates size, accuracy and latency. Update codecs (what crosses the wire
each round) live in aureon.codecs.

The names below load on first use (PEP 562): serving reads a run through
``aureon.model_compression.run_config`` and the int8/sparse loaders, and must
not pull in the training stack and Opacus with the compression job.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_FROM = {
    "compress_run": "model_job",
    "distill": "distillation",
    "student_config": "distillation",
    "prune_global_magnitude": "pruning",
    "weight_sparsity": "pruning",
    "load_quantized": "quantization",
    "quantize_dynamic_int8": "quantization",
    "quantize_model_int8": "quantization",
    "quantize_static_int8": "quantization",
    "save_quantized": "quantization",
    "load_sparse": "sparse_io",
    "save_sparse": "sparse_io",
}
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


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
