"""``python -m simulations.compress run_dir=<run> method=prune|quantize|distill [key=value ...]``

Compresses a finished run's global model for deployment and writes, next to
its model.pt, ``model.<method>.pt`` (``model.quantize.bin``: int8 values and scales,
see aureon.model_compression.int8_io) and a table (compression_<method>.json and
.md) against the original. Options (defaults in aureon.config.ModelCompressionJob):

    sparsity=0.7 finetune_epochs=0 finetune_lr=0.01       (prune)
    quantization=static|dynamic                           (quantize)
    student_fraction=0.25 distill_epochs=30 temperature=4 (distill)
    latency_rounds=30 seed=0

A bad argument or a damaged run folder (config.yaml, model.pt) ends the
command with one line on stderr (``error: ...``) and exit code 2; ``--debug``
or ``AUREON_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aureon.cli import run_cli
from aureon.config import ModelCompressionJob
from aureon.exceptions import AureonError


def parse(argv: list[str]) -> ModelCompressionJob:
    """key=value arguments checked against ModelCompressionJob (names and types)."""
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise AureonError(f"arguments must be key=value, got {bad}; see --help")
    schema = OmegaConf.structured(ModelCompressionJob)
    try:
        merged = OmegaConf.merge(schema, OmegaConf.from_dotlist(argv))
        job = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise AureonError(f"bad argument: {error}".split("\n")[0]) from error
    if not isinstance(job, ModelCompressionJob):
        raise AureonError(f"arguments did not form a ModelCompressionJob: {job!r}")
    job.validate()
    return job


def compress_command(argv: list[str]) -> int:
    """Parse ``argv``, compress, print the table; errors propagate to ``run_cli``."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    job = parse(argv)
    # Arguments valid: only now torch and the compression code load.
    from aureon.model_compression.model_job import compress_run, markdown

    result = compress_run(job)
    print(markdown(result))
    print(f"wrote {result['model_file']} and compression_{job.method}.json/.md in {job.run_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command's exit code: 0, or 2 after one ``error: ...`` line on stderr."""
    return run_cli(compress_command, argv)


if __name__ == "__main__":
    raise SystemExit(main())
