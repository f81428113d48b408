"""The canaries of a one-run privacy audit: which training rows, which wrong labels, which clients, which coins.

A canary is a training example held out of every client's partition, given a
label of another class (``audit.kind=mislabelled``): a model that has not
trained on it predicts its true class, so only memorising it lowers its loss on
the wrong label. Each canary goes to one client (round-robin over a shuffled
order, so every client gets its share) and is included in that client's
training data when the auditor's coin, drawn from ``audit.seed``, says so
(probability 1/2). The plan is a pure function of the audit config, the
training labels and the number of clients, so every client and the auditor
compute the same one without exchanging anything; the DP machinery then sees
an included canary as one more row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aureon.config import AuditConfig
from aureon.exceptions import ConfigError
from aureon.privacy.canary_clients import KIND as CANARY_CLIENTS
from aureon.privacy.canary_clients import CanaryClientPlan, plan_canary_clients

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
RECORD_FORMAT = 1
RECORD_FILE = "canaries.json"


@dataclass(frozen=True)
class CanaryPlan:
    """Canary i is training row ``rows[i]`` labelled ``labels[i]``, given to ``partition[i]`` if ``included[i]``."""

    num_train: int
    rows: IntArray
    true_labels: IntArray
    labels: IntArray
    partition: IntArray
    included: BoolArray
    num_partitions: int

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def regular_clients(self) -> int:
        """How many partitions hold regular data: all of them (the canaries join their data)."""
        return self.num_partitions

    def kept_rows(self) -> IntArray:
        """The training rows the clients' partitions are cut from: every row that is not a canary."""
        keep = np.ones(self.num_train, dtype=bool)
        keep[self.rows] = False
        return np.flatnonzero(keep).astype(np.int64)

    def of_partition(self, partition_id: int) -> tuple[IntArray, IntArray]:
        """The training rows and wrong labels of the canaries included in ``partition_id``'s data."""
        chosen = self.included & (self.partition == partition_id)
        return self.rows[chosen], self.labels[chosen]

    def to_json(self) -> dict[str, Any]:
        """The record the run directory keeps: which canaries were in, so the audit can be checked."""
        return {
            "format": RECORD_FORMAT,
            "num_train": self.num_train,
            "rows": self.rows.tolist(),
            "true_labels": self.true_labels.tolist(),
            "labels": self.labels.tolist(),
            "partition": self.partition.tolist(),
            "included": self.included.astype(int).tolist(),
        }


def plan_canaries(config: AuditConfig, *, labels: npt.ArrayLike, num_classes: int, num_partitions: int) -> CanaryPlan:
    """The canaries of ``config`` over a training split with these ``labels``; none when the audit is off."""
    y = np.asarray(labels, dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)
    if not config.enabled:
        return CanaryPlan(len(y), empty, empty, empty, empty, np.zeros(0, dtype=bool), num_partitions)
    if config.kind != "mislabelled":
        raise ConfigError(f"audit.kind must be 'mislabelled', got {config.kind!r}")
    if num_classes < 2:
        raise ConfigError(f"audit.kind=mislabelled needs a dataset of >= 2 classes, got {num_classes}")
    most = len(y) // 2
    if config.canaries > most:
        raise ConfigError(
            f"audit.canaries must be <= {most} (half of the {len(y)} training examples, the rest stay "
            f"the clients' data), got {config.canaries}"
        )
    if num_partitions < 1:
        raise ConfigError(f"num_clients must be >= 1, got {num_partitions}")
    rng = np.random.default_rng(config.seed)
    m = config.canaries
    rows = rng.choice(len(y), size=m, replace=False).astype(np.int64)
    true_labels = y[rows]
    wrong = (true_labels + rng.integers(1, num_classes, size=m)) % num_classes
    partition = rng.permutation(np.arange(m, dtype=np.int64) % num_partitions)
    included = rng.random(m) < 0.5
    return CanaryPlan(
        num_train=len(y),
        rows=rows,
        true_labels=true_labels,
        labels=wrong.astype(np.int64),
        partition=partition,
        included=included,
        num_partitions=num_partitions,
    )


def plan_client_canaries(
    config: AuditConfig, *, labels: npt.ArrayLike, num_classes: int, num_partitions: int
) -> CanaryPlan | CanaryClientPlan:
    """What a client of a ``num_partitions`` federation adds for the audit: canary examples or a canary client."""
    if config.enabled and config.kind == CANARY_CLIENTS:
        return plan_canary_clients(config, labels=labels, num_classes=num_classes, num_clients=num_partitions)
    return plan_canaries(config, labels=labels, num_classes=num_classes, num_partitions=num_partitions)
