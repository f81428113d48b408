"""How every AUREON command fails: one line ``error: <message>`` on stderr, exit code 2.

A user who passes a bad file or value needs to know which one and why, not a
traceback. Errors AUREON raises on purpose (``AureonError``) and file-system
errors (``OSError``: a missing or unreadable path) are reported that way; any
other exception is a bug and keeps its traceback. ``--debug`` on the command
line or ``AUREON_DEBUG=1`` in the environment prints the traceback of expected
errors too, above the same line (the exit code stays 2).

A plain ``main(argv) -> int`` command::

    if __name__ == "__main__":
        sys.exit(run_cli(main))

A Hydra task function (Hydra parses ``sys.argv`` itself and turns exceptions
into exit code 1 with a page of its own; ``run_hydra`` makes its composition
errors, such as an unknown group option or a value of the wrong type, one line
and exit code 2 as well)::

    @hydra.main(...)
    def main(cfg):
        return exit_on_error(lambda: work(cfg))

    if __name__ == "__main__":
        run_hydra(main)

This module imports nothing heavy: a command reports a bad value before it
loads torch or Flower.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

from aureon.exceptions import AureonError, ConfigError, one_line

DEBUG_ENV = "AUREON_DEBUG"
DEBUG_FLAG = "--debug"
EXIT_ERROR = 2
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (AureonError, OSError)
# Set, Hydra re-raises its errors instead of printing them and exiting 1 (hydra._internal.utils).
HYDRA_FULL_ERROR = "HYDRA_FULL_ERROR"
# Lines of Hydra's messages that help nobody on one line: where it searched, how to see more.
# ("To append ... use +key=value" is no help: AUREON's schemas have no place for a new key.)
_HYDRA_NOISE = (
    "Config search path:",
    "Set the environment variable",
    "See https://hydra.cc",
    "To append to your config",
)

T = TypeVar("T")


def debug_enabled() -> bool:
    """Whether expected errors should show their traceback (``AUREON_DEBUG`` set and not 0)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def take_debug_flag(argv: list[str]) -> bool:
    """Remove ``--debug`` from ``argv`` (in place) and, if it was there, set ``AUREON_DEBUG=1``.

    The flag becomes the environment variable so that code which never sees
    argv (a Hydra task, a child process) honours it too.
    """
    found = DEBUG_FLAG in argv
    argv[:] = [arg for arg in argv if arg != DEBUG_FLAG]
    if found:
        os.environ[DEBUG_ENV] = "1"
    return found


def error_line(error: BaseException) -> str:
    """The single line printed for ``error``: ``error: <message>``."""
    return f"error: {one_line(str(error), limit=2000) or type(error).__name__}"


def report(error: BaseException) -> int:
    """Print ``error`` as one line (after its traceback under debug); return exit code 2."""
    if debug_enabled():
        traceback.print_exception(error, file=sys.stderr)
    print(error_line(error), file=sys.stderr)
    return EXIT_ERROR


def exit_on_error(body: Callable[[], T]) -> T:
    """Run ``body``; an expected error is reported and raises ``SystemExit(2)``.

    For entry points whose framework owns the exit code (a Hydra task function
    returns its value to Hydra; only SystemExit gets past Hydra's error handler).
    """
    try:
        return body()
    except EXPECTED_ERRORS as error:
        discard_unused_run_dir()
        raise SystemExit(report(error)) from error


def discard_unused_run_dir() -> None:
    """Remove the Hydra job's output folder if the failed job left nothing in it but Hydra's own files.

    Hydra creates ``outputs/<date>/<time>/`` before the task runs; a command that
    stops on a bad value must not leave an empty run behind for the user to wonder about.
    """
    import shutil
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if not run_dir.is_dir():
        return
    hydra_files = {"config.yaml", "hydra.yaml", "overrides.yaml"}
    for entry in run_dir.iterdir():
        if entry.name == ".hydra" and entry.is_dir():
            if any(child.name not in hydra_files or not child.is_file() for child in entry.iterdir()):
                return
        elif not (entry.is_file() and entry.suffix == ".log"):
            return
    shutil.rmtree(run_dir, ignore_errors=True)
    for parent in (run_dir.parent, run_dir.parent.parent):
        try:
            parent.rmdir()  # only succeeds when empty
        except OSError:
            break


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` (``--debug`` removed) and return its exit code; expected errors give 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    take_debug_flag(args)
    try:
        code = main(args)
    except EXPECTED_ERRORS as error:
        return report(error)
    return 0 if code is None else code


def hydra_error_message(error: BaseException) -> str:
    """Hydra's multi-line composition error as one sentence that names the key or option.

    The search path, the hint about ``HYDRA_FULL_ERROR`` and the ``schema_*``
    entries of a group (AUREON's structured-config schemas, not choices) are left out.
    """
    lines: list[str] = []
    for raw in str(error).splitlines():
        line = raw.strip()
        if not line or line.startswith(_HYDRA_NOISE[1:]):
            continue
        if line.startswith(_HYDRA_NOISE[0]):
            break
        if raw.startswith("\t") and lines:
            if not line.startswith("schema_"):
                lines[-1] += f" {line}" if lines[-1].endswith(":") else f", {line}"
            continue
        lines.append(line)
    message = "; ".join(lines)
    cause = error.__cause__
    if cause is not None:
        details = [
            line.strip()
            for line in str(cause).splitlines()
            if line.strip() and not line.strip().startswith(("object_type=", "reference_type="))
        ]
        message = f"{message.rstrip('.')}: {'; '.join(details)}" if details else message
    override = getattr(error, "override", None)
    if override:
        message = f"cannot parse the override {override!r}: {message}"
    return message


def run_hydra(main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function as an AUREON command.

    ``--debug`` is taken from ``sys.argv``; Hydra's own errors (an unknown group
    option, a key the schema lacks, a value of the wrong type, bad override syntax)
    end the command like AUREON's: one ``error:`` line and ``SystemExit(2)``.
    """
    from hydra.errors import HydraException

    take_debug_flag(sys.argv)
    previous = os.environ.get(HYDRA_FULL_ERROR)
    os.environ[HYDRA_FULL_ERROR] = "1"
    try:
        main()
    except HydraException as error:
        wrapped = ConfigError(hydra_error_message(error))
        wrapped.__cause__ = error
        raise SystemExit(report(wrapped)) from None
    finally:
        if previous is None:
            os.environ.pop(HYDRA_FULL_ERROR, None)
        else:
            os.environ[HYDRA_FULL_ERROR] = previous
