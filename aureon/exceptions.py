"""Errors that AUREON raises on purpose, each with a message a user can act on."""


class AureonError(Exception):
    """Base class of every error raised deliberately by AUREON."""


class ConfigError(AureonError, ValueError):
    """A configuration value is out of range, of the wrong kind, or inconsistent."""


class DataError(AureonError):
    """A dataset could not be found or read in the expected format."""


class PrivacyBudgetExhausted(AureonError):
    """Training further would spend more privacy budget than the config allows."""


class PrivacyRefused(AureonError):
    """A request from the server would weaken the client's own privacy floor."""


class LedgerError(AureonError):
    """A client's privacy ledger is missing or unreadable: it must not restart from zero."""


class RunFailed(AureonError):
    """A run stopped before its last round (the log and results.json say why)."""


class SecureAggregationError(AureonError):
    """A secure-aggregation round cannot produce a correct sum (too few survivors, bad shares)."""


class ModelFileError(AureonError, ValueError):
    """A saved model file is unreadable, corrupted, or does not fit the model it is loaded into."""


def one_line(text: str, *, limit: int = 400) -> str:
    """``text`` on a single line (its lines joined by "; "), at most ``limit`` characters.

    Errors are reported as one line of stderr; a third-party message that spans
    a page would bury the file name that leads it.
    """
    joined = "; ".join(line.strip() for line in str(text).splitlines() if line.strip())
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def describe(error: BaseException, *, limit: int = 200) -> str:
    """``TypeName: message`` on one line, for wrapping a library's error in ours."""
    message = one_line(str(error), limit=limit)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
