"""key=value command lines of the serving commands, checked against their schemas before torch loads."""

from __future__ import annotations

from typing import TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aureon.exceptions import AureonError

T = TypeVar("T")


def parse_job(schema: type[T], argv: list[str]) -> T:
    """``argv`` (key=value, dotted keys for nested ones) merged into ``schema``, validated."""
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise AureonError(f"arguments must be key=value, got {bad}; see --help")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.from_dotlist(argv))
        job = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise AureonError(f"bad argument: {error}".split("\n")[0]) from error
    if not isinstance(job, schema):
        raise AureonError(f"arguments did not form a {schema.__name__}: {job!r}")
    validate = getattr(job, "validate", None)
    if validate is not None:
        validate()
    return job
