"""Request bodies to model rows, and every way they can be wrong, each with its own message.

Two encodings. JSON: ``{"rows": [row, ...]}`` or ``{"row": row}``, a row being
the image's C*H*W numbers, flat or nested, plus optional ``"dtype": "uint8"``
for raw pixels. Raw bytes (for speed): the little-endian float32 or uint8
values of the rows, their shape in an ``X-Shape: n,C,H,W`` header (or ``n``)
and the type in ``X-Dtype``. Float rows are the images as the run's dataset
gives them (standardised); uint8 rows are raw pixels, scaled and
standardised with serving.uint8_*.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

DTYPES: dict[str, np.dtype] = {"float32": np.dtype("<f4"), "uint8": np.dtype(np.uint8)}


class BadInput(Exception):
    """A request the server refuses; ``status`` is the HTTP code, the message says what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class InputSpec:
    """What one row must be, and how uint8 pixels become model input."""

    image_shape: tuple[int, ...]
    max_rows: int
    uint8_scale: float
    uint8_mean: float
    uint8_std: float

    @property
    def row_size(self) -> int:
        return math.prod(self.image_shape)

    def to_images(self, values: np.ndarray, dtype: str) -> np.ndarray:
        """(n, row_size) values of ``dtype`` -> (n, C, H, W) float32 model input; checks count and values."""
        n = len(values)
        if n == 0:
            raise BadInput(422, "the request holds no rows; expected at least 1")
        if n > self.max_rows:
            raise BadInput(413, f"the request holds {n} rows; at most serving.max_rows={self.max_rows} are accepted")
        if values.shape[1:] != (self.row_size,):
            raise BadInput(
                422,
                f"each row must hold {self.row_size} values (an image of shape {list(self.image_shape)}), "
                f"got {values.shape[1] if values.ndim == 2 else 'rows of different lengths'}",
            )
        if dtype == "uint8":
            images = (values.astype(np.float32) / self.uint8_scale - self.uint8_mean) / self.uint8_std
        else:
            images = np.ascontiguousarray(values, dtype=np.float32)
            finite = np.isfinite(images).all(axis=1)
            if not finite.all():
                bad = np.flatnonzero(~finite)[:5].tolist()
                raise BadInput(422, f"rows {bad} hold NaN or Inf; every value must be a finite number")
        return images.reshape(n, *self.image_shape)


def _dtype(name: object) -> str:
    if name not in DTYPES:
        raise BadInput(422, f"dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return str(name)


def parse_json(body: bytes | str, spec: InputSpec) -> np.ndarray:
    """Rows from a JSON body (see the module doc)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(400, f"the body is not valid JSON ({err})") from None
    if not isinstance(document, dict) or ("rows" in document) == ("row" in document):
        raise BadInput(400, 'expected a JSON object with "rows": [row, ...] or "row": row')
    dtype = _dtype(document.get("dtype", "float32"))
    rows = document["rows"] if "rows" in document else [document["row"]]
    if not isinstance(rows, list):
        raise BadInput(400, f'"rows" must be a list of rows, got {type(rows).__name__}')
    if len(rows) > spec.max_rows:
        raise BadInput(
            413, f"the request holds {len(rows)} rows; at most serving.max_rows={spec.max_rows} are accepted"
        )
    flat: list[np.ndarray] = []
    for index, row in enumerate(rows):
        try:
            array = np.asarray(row, dtype=np.float64).reshape(-1)
        except (ValueError, TypeError):
            raise BadInput(
                422, f"row {index} must be a list of numbers (flat or nested), got {str(row)[:60]}"
            ) from None
        if array.size != spec.row_size:
            raise BadInput(
                422,
                f"row {index} holds {array.size} values; expected {spec.row_size} "
                f"(an image of shape {list(spec.image_shape)})",
            )
        if dtype == "uint8" and ((array < 0) | (array > 255) | (array != np.round(array))).any():
            raise BadInput(422, f"row {index}: uint8 values must be whole numbers in [0, 255]")
        flat.append(array)
    if not flat:
        raise BadInput(422, "the request holds no rows; expected at least 1")
    values = np.stack(flat)
    if dtype == "float32" and not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))[:5].tolist()
        raise BadInput(422, f"rows {bad} hold NaN or Inf (or a number too large); every value must be finite")
    return spec.to_images(values.astype(np.float32) if dtype == "float32" else values.astype(np.uint8), dtype)


def parse_bytes(body: bytes, *, shape_header: str | None, dtype_header: str | None, spec: InputSpec) -> np.ndarray:
    """Rows from raw little-endian bytes with an ``X-Shape`` and ``X-Dtype`` header."""
    dtype = _dtype(dtype_header or "float32")
    if not shape_header:
        raise BadInput(400, f"raw bytes need an X-Shape header: n or n,{','.join(map(str, spec.image_shape))}")
    try:
        shape = tuple(int(part) for part in shape_header.split(","))
    except ValueError:
        raise BadInput(400, f"X-Shape must be integers separated by commas, got {shape_header!r}") from None
    if not shape or any(s < 0 for s in shape) or (len(shape) > 1 and shape[1:] != spec.image_shape):
        raise BadInput(422, f"X-Shape must be n or n,{','.join(map(str, spec.image_shape))}, got {shape_header!r}")
    itemsize = DTYPES[dtype].itemsize
    expected = shape[0] * spec.row_size * itemsize
    if len(body) != expected:
        raise BadInput(
            422,
            f"X-Shape {shape_header} of {dtype} needs {expected} bytes, the body holds {len(body)} "
            f"(each row: {spec.row_size} values of {itemsize} byte{'s' if itemsize > 1 else ''})",
        )
    values = np.frombuffer(body, dtype=DTYPES[dtype]).reshape(shape[0], spec.row_size)
    return spec.to_images(values, dtype)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def answer(logits: np.ndarray) -> dict[str, list]:
    """The JSON answer for a request's rows: predicted class and class probabilities per row."""
    return {"predictions": logits.argmax(axis=1).tolist(), "probabilities": softmax(logits).round(6).tolist()}
