"""Batch prediction of a table file (CSV or Parquet) with a tabular run: each row, then its prediction.

The input is read in chunks (pandas' CSV reader, pyarrow's Parquet record
batches); each chunk is typed as training typed its table, goes through the
run's feature pipeline and model, and is written with its own columns
unchanged followed by ``prediction`` (the class name, or the value in the
target's units) and, for a classifier, ``p_<class>`` per class. Columns the
run does not use (an id, the target) pass through. The output appears whole
or not at all: it is streamed to a temporary file beside it and renamed once
complete (``aureon.files.atomic_write_chunks``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aureon.exceptions import DataError
from aureon.files import atomic_write_chunks
from aureon.serving.inputs import BadInput
from aureon.serving.table_inputs import TableInputs
from aureon.serving.table_model import TableTask

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def table_kind(path: Path) -> str:
    """ "csv" or "parquet", from the file name; a DataError for anything else."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise DataError(f"{str(path)!r}: a tabular run reads and writes {', '.join(TABLE_SUFFIXES)} files")


@dataclass
class TableSource:
    """A table file read ``size`` rows at a time: each chunk as pandas (for the model) and as it was read."""

    path: Path
    kind: str
    count: int
    columns: list[str]

    def chunks(self, size: int) -> Iterator[tuple[pd.DataFrame, Any]]:
        if self.kind == "csv":
            for frame in pd.read_csv(self.path, chunksize=size):
                yield frame, frame
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=size):
            yield batch.to_pandas(), pa.Table.from_batches([batch])


def open_table(path: Path) -> TableSource:
    """The input file a user named; its row count and column names read without loading its rows."""
    path = Path(path)
    kind = table_kind(path)
    if not path.is_file():
        raise DataError(f"input={str(path)!r}: no such file")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(path)
            return TableSource(path, kind, metadata.metadata.num_rows, list(metadata.schema_arrow.names))
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
        count = sum(len(chunk) for chunk in pd.read_csv(path, chunksize=1 << 16, usecols=[0]))
    except (OSError, ValueError) as err:
        raise DataError(f"input={str(path)!r}: unreadable as a {kind} table ({err})") from err
    return TableSource(path, kind, count, columns)


class _Drain:
    """A write-only file for pyarrow's ParquetWriter that hands over what it wrote since the last ``take``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


Predicted = Iterator[tuple[pd.DataFrame, Any, dict[str, np.ndarray]]]  # (pandas, as read, added columns)


def _csv_bytes(chunks: Predicted) -> Iterator[bytes]:
    for index, (frame, _, added) in enumerate(chunks):
        out = frame.assign(**added)
        yield out.to_csv(index=False, header=index == 0).encode("utf-8")


def _parquet_bytes(chunks: Predicted) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    drain = _Drain()
    writer: pq.ParquetWriter | None = None
    try:
        for _, table, added in chunks:
            if not isinstance(table, pa.Table):
                table = pa.Table.from_pandas(table, preserve_index=False)
            for name, values in added.items():
                table = table.append_column(name, pa.array(values))
            if writer is None:
                writer = pq.ParquetWriter(pa.PythonFile(drain, mode="w"), table.schema)
            writer.write_table(table)
            yield drain.take()
    finally:
        if writer is not None:
            writer.close()
    yield drain.take()


def predict_table(
    *,
    source: TableSource,
    output: Path,
    inputs: TableInputs,
    task: TableTask,
    logits: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
    progress: bool = True,
) -> int:
    """Predict every row of ``source`` into ``output`` (.csv or .parquet); returns the rows written."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    out_kind = table_kind(Path(output))
    if str(output).lower().endswith(".gz"):
        raise DataError(f"output={str(output)!r}: write a plain .csv or a .parquet file")
    clash = [c for c in task.output_columns() if c in source.columns]
    if clash:
        raise DataError(
            f"input={str(source.path)!r} already has column(s) {clash}, which batch prediction adds; rename them"
        )
    where = f"input={str(source.path)!r}"
    if source.count == 0:
        raise DataError(f"{where}: the file holds no rows")
    written = 0
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())

    def predicted(bar: Progress, bar_task: Any) -> Predicted:
        nonlocal written
        for frame, original in source.chunks(batch_size):
            typed = inputs.frame_of_chunk(frame, first_row=written, where=where)
            try:
                features = inputs.features(typed, first_row=written)
            except BadInput as err:
                raise DataError(f"{where}, rows from {written}: {err.message}") from None
            yield frame, original, task.columns_of(logits(features))
            written += len(frame)
            bar.advance(bar_task, len(frame))

    with Progress("[bold]predicting", *columns, console=Console(stderr=True), disable=not progress) as bar:
        bar_task = bar.add_task("predict", total=source.count)
        encode = _csv_bytes if out_kind == "csv" else _parquet_bytes
        atomic_write_chunks(Path(output), encode(predicted(bar, bar_task)))
    return written
