"""``python -m simulations.predict run_dir=<run> input=<file.npy|file.csv|idx folder> output=<file.npy|file.csv>``

A tabular run (features=standardize, onehot, ...) reads a table instead,
``input=<file.csv|file.parquet> output=<file.csv|file.parquet>``: the rows with
the run's column names, written back with ``prediction`` (and ``p_<class>`` per
class) beside them, through the run's saved feature pipeline.

Predicts every row of a large file with a finished run's model (or
``model=quantize|prune|distill``) in batches of serving.predict_batch rows,
reading and writing as it goes so memory stays flat whatever the file's size.
``probabilities=true`` writes the class probabilities to a .npy output
instead of the classes. See aureon/serving/batch.py for the input formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aureon.cli import run_cli
from aureon.config.serving import PredictJob
from aureon.serving.jobs import parse_job

if TYPE_CHECKING:
    from aureon.serving.loading import ServedModel


def predict_command(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    job = parse_job(PredictJob, argv)
    import torch

    from aureon.serving.batch import Sink, open_source, predict_file
    from aureon.serving.inputs import InputSpec
    from aureon.serving.loading import load_served_model

    torch.set_num_threads(job.serving.torch_threads)
    model = load_served_model(
        job.run_dir,
        model=job.model,
        input_shape=tuple(job.input_shape) if job.input_shape else None,
        num_classes=job.num_classes,
    )
    spec = InputSpec(
        image_shape=model.info.image_shape,
        max_rows=job.serving.predict_batch,
        uint8_scale=job.serving.uint8_scale,
        uint8_mean=job.serving.uint8_mean,
        uint8_std=job.serving.uint8_std,
    )
    if model.table is not None:
        return _predict_table(job, model)
    source = open_source(Path(job.input), spec.row_size)
    sink = Sink(
        Path(job.output), count=source.count, num_classes=model.info.num_classes, probabilities=job.probabilities
    )
    rows = predict_file(
        source=source,
        sink=sink,
        spec=spec,
        logits=model.logits,
        batch_size=job.serving.predict_batch,
        progress=job.progress,
    )
    print(f"wrote {rows} predictions to {job.output}")
    return 0


def _predict_table(job: PredictJob, model: ServedModel) -> int:
    from aureon.serving.table_batch import open_table, predict_table
    from aureon.serving.table_inputs import TableInputs

    if model.table is None:
        raise ValueError("a tabular run's model expected")
    rows = predict_table(
        source=open_table(Path(job.input)),
        output=Path(job.output),
        inputs=TableInputs(model.table.pipeline, max_rows=job.serving.predict_batch),
        task=model.table,
        logits=model.logits,
        batch_size=job.serving.predict_batch,
        progress=job.progress,
    )
    print(f"wrote {rows} rows with their predictions to {job.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(predict_command, argv)


if __name__ == "__main__":
    raise SystemExit(main())
