"""The global weights sent in the current round, read out of their record once for every reader.

Validation, norm bounding and compressed transport all compare a reply with
what the server sent; each reading the ArrayRecord itself would decode the
model once per wrapper and keep one copy each.
"""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord


class SentWeights:
    """One read-only numpy copy of the weights sent in the latest round."""

    def __init__(self) -> None:
        self._round: int | None = None
        self._source: ArrayRecord | None = None
        self._weights: dict[str, np.ndarray] = {}

    def take(self, server_round: int, arrays: ArrayRecord) -> dict[str, np.ndarray]:
        """The copy of ``arrays`` sent in ``server_round``, made by the first caller of the round."""
        if self._round != server_round or self._source is not arrays:
            weights = {name: array.numpy() for name, array in arrays.items()}
            for value in weights.values():
                value.flags.writeable = False  # shared: a reader that changed it would change every reader's
            self._round, self._source, self._weights = server_round, arrays, weights
        return self._weights

    def of(self, server_round: int) -> dict[str, np.ndarray] | None:
        """The weights sent in ``server_round``, or None when that is not the latest round sent."""
        return self._weights if self._round == server_round else None

    def clear(self) -> None:
        self._round, self._source, self._weights = None, None, {}
