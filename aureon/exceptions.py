"""Errors that AUREON raises on purpose, each with a message a user can act on."""


class AureonError(Exception):
    """Base class of every error raised deliberately by AUREON."""


class ConfigError(AureonError, ValueError):
    """A configuration value is out of range, of the wrong kind, or inconsistent."""


class DataError(AureonError):
    """A dataset could not be found or read in the expected format."""


class PrivacyBudgetExhausted(AureonError):
    """Training further would spend more privacy budget than the config allows."""


class SecureAggregationError(AureonError):
    """A secure-aggregation round cannot produce a correct sum (too few survivors, bad shares)."""
