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
into exit code 1)::

    @hydra.main(...)
    def main(cfg):
        return exit_on_error(lambda: work(cfg))

    if __name__ == "__main__":
        take_debug_flag(sys.argv)
        main()
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

from aureon.exceptions import AureonError, one_line

DEBUG_ENV = "AUREON_DEBUG"
DEBUG_FLAG = "--debug"
EXIT_ERROR = 2
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (AureonError, OSError)

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
        raise SystemExit(report(error)) from error


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` (``--debug`` removed) and return its exit code; expected errors give 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    take_debug_flag(args)
    try:
        code = main(args)
    except EXPECTED_ERRORS as error:
        return report(error)
    return 0 if code is None else code
