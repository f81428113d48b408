"""Rows of a table to the model's input, checked column by column: JSON objects or a file's chunk.

A JSON row is ``{"column": value, ...}``. A missing key or null is a missing
value (the pipeline imputes it, or gives it its own category); a numeric
column takes a JSON number (true/false count as 1/0, as a boolean column
did in training); a categorical column takes a string, and a category the
fit did not keep goes to the pipeline's "other" column. Every refusal names
the row, the column, the value and what was expected. The checked rows
become a ``Table`` and go through the run's own ``FittedPipeline.transform``,
the function that made the training rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aureon.data.tables import Table
from aureon.exceptions import DataError
from aureon.features.tabular.pipeline import FittedPipeline
from aureon.serving.inputs import BadInput

SHOWN_COLUMNS = 20  # column names quoted in one error message


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {json.dumps(value[:60])}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _quote(columns: tuple[str, ...]) -> str:
    shown = ", ".join(json.dumps(c) for c in columns[:SHOWN_COLUMNS])
    return f"[{shown}{', ...' if len(columns) > SHOWN_COLUMNS else ''}]"


@dataclass(frozen=True)
class TableInputs:
    """The columns a served tabular run takes, and the transformation its rows go through."""

    pipeline: FittedPipeline
    max_rows: int

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.pipeline.numeric, *self.pipeline.categorical)

    # ---------------------------------------------------------------- JSON rows
    def parse_json(self, body: bytes | str) -> np.ndarray:
        """The model input of a JSON body ``{"rows": [{...}, ...]}`` or ``{"row": {...}}``."""
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise BadInput(400, f"the body is not valid JSON ({err})") from None
        return self.parse_document(document)

    def parse_document(self, document: Any) -> np.ndarray:
        if not isinstance(document, dict) or ("rows" in document) == ("row" in document):
            raise BadInput(400, 'expected a JSON object with "rows": [{"column": value, ...}, ...] or "row": {...}')
        rows = document["rows"] if "rows" in document else [document["row"]]
        if not isinstance(rows, list):
            raise BadInput(400, f'"rows" must be a list of JSON objects, got {_kind(rows)}')
        return self.features(self.frame_of_rows(rows), first_row=0)

    def frame_of_rows(self, rows: list[Any]) -> pd.DataFrame:
        """The typed columns of the JSON rows; refuses the first value that does not fit its column."""
        if not rows:
            raise BadInput(422, "the request holds no rows; expected at least 1")
        if len(rows) > self.max_rows:
            raise BadInput(
                413, f"the request holds {len(rows)} rows; at most serving.max_rows={self.max_rows} are accepted"
            )
        known = set(self.columns)
        numeric = {c: np.full(len(rows), np.nan) for c in self.pipeline.numeric}
        categorical = {c: np.full(len(rows), np.nan, dtype=object) for c in self.pipeline.categorical}
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise BadInput(422, f'row {index} must be a JSON object {{"column": value, ...}}, got {_kind(row)}')
            for column, value in row.items():
                if column not in known:
                    raise BadInput(
                        422, f"row {index}: unknown column {json.dumps(column)}; the columns are {_quote(self.columns)}"
                    )
                if value is None:
                    continue
                if column in numeric:
                    numeric[column][index] = _number(value, row=index, column=column)
                else:
                    if not isinstance(value, str):
                        raise BadInput(
                            422,
                            f"row {index}, column {json.dumps(column)}: expected a category as a string "
                            f"(or null for a missing value), got {_kind(value)}",
                        )
                    categorical[column][index] = value
        return pd.DataFrame({**numeric, **categorical}, columns=list(self.columns))

    # ---------------------------------------------------------------- file chunks
    def frame_of_chunk(self, chunk: pd.DataFrame, *, first_row: int, where: str) -> pd.DataFrame:
        """A file's chunk typed like the training table (``table_from_frame``'s rules); other columns ignored.

        Row numbers in errors count the file's data rows from 1, as the training loader's do.
        """
        absent = [c for c in self.columns if c not in chunk.columns]
        if absent:
            raise DataError(
                f"{where}: column(s) {absent} of the run's table are not in the file; its columns are "
                f"{[str(c) for c in chunk.columns][:SHOWN_COLUMNS]} (an empty cell is a missing value, "
                "a missing column is refused)"
            )
        typed: dict[str, pd.Series] = {}
        for column in self.pipeline.numeric:
            values = chunk[column].reset_index(drop=True)
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                typed[column] = values.astype(np.float64)
                continue
            parsed = pd.to_numeric(values, errors="coerce")
            bad = np.flatnonzero((parsed.isna() & values.notna()).to_numpy())
            if len(bad):
                row = int(bad[0])
                raise DataError(
                    f"{where}: column {column!r} is numeric but row {first_row + row + 1} holds "
                    f"{values.iloc[row]!r} ({len(bad)} such value(s) in rows {first_row + 1}.."
                    f"{first_row + len(values)}); expected a number, or an empty cell for a missing value"
                )
            typed[column] = parsed.astype(np.float64)
        for column in self.pipeline.categorical:
            values = chunk[column].reset_index(drop=True)
            typed[column] = values.astype("string").astype(object).where(values.notna(), np.nan)
        return pd.DataFrame(typed, columns=list(self.columns))

    # ---------------------------------------------------------------- transform
    def features(self, frame: pd.DataFrame, *, first_row: int) -> np.ndarray:
        """(rows, width) float32 model input of typed rows: the pipeline's transform, every value finite."""
        table = Table(
            name="request",
            features=frame,
            target=pd.Series(np.zeros(len(frame))),
            task="regression" if self.pipeline.target is not None else "classification",
            numeric=self.pipeline.numeric,
            categorical=self.pipeline.categorical,
        )
        with np.errstate(all="ignore"):
            values = self.pipeline.transform(table)
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            bad = (np.flatnonzero(~finite)[:5] + first_row).tolist()
            raise BadInput(
                422,
                f"rows {bad}: a value is too large for the run's feature pipeline (it overflows once "
                "transformed); expected numbers in the range the model was trained on",
            )
        return values


def _number(value: Any, *, row: int, column: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        raise BadInput(
            422,
            f"row {row}, column {json.dumps(column)}: expected a number (or null for a missing value), "
            f"got {_kind(value)}",
        )
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise BadInput(
            422,
            f"row {row}, column {json.dumps(column)}: expected a finite number (null for a missing value), "
            f"got {value!r}",
        )
    return number
