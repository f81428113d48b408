"""Canary clients: the audit's unit for client-level DP is a whole client, so the canary is one.

Canary client i holds ``audit.examples_per_canary`` training examples held out
of every regular partition, all labelled with one class ``labels[i]`` that is
none of their true classes: only a model that trained on that client's update
learns to put its examples in that class. Each canary client joins the
federation when the auditor's coin (from ``audit.seed``, probability 1/2) says
so, and then takes part like any other client, sampled or not.

The federation that runs is the regular clients plus the included canary
clients: ``num_clients`` counts both, so the sampling rate the client-level
accountant uses is the one actually run. The included canary clients hold the
last partition ids, in canary order; the regular partitions are cut, as
without an audit, from the rows no canary holds. Like the example canaries'
plan, this one is a pure function of the audit config, the training labels
and ``num_clients``, which every client and the auditor compute alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from aureon.config import AuditConfig, AureonConfig
from aureon.exceptions import ConfigError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
KIND = "canary_clients"
RECORD_FORMAT = 1


def included_canary_clients(config: AuditConfig) -> BoolArray:
    """The auditor's coins: which of the ``audit.canaries`` canary clients join the federation.

    Drawn from a stream of ``audit.seed`` of their own, so the count is known
    before the data is (``with_canary_clients`` needs it to size the federation).
    """
    return np.random.default_rng([config.seed, 1]).random(config.canaries) < 0.5


def with_canary_clients(config: AureonConfig) -> AureonConfig:
    """``config`` with ``num_clients`` grown by the included canary clients (a copy; unchanged for other kinds).

    ``config.num_clients`` names the regular clients asked for; the run, its
    node count and its client-level accountant then see every client that runs.
    """
    if not config.audit.enabled or config.audit.kind != KIND:
        return config
    return replace(config, num_clients=config.num_clients + int(included_canary_clients(config.audit).sum()))


@dataclass(frozen=True)
class CanaryClientPlan:
    """Canary client i holds training rows ``rows[i]`` labelled ``labels[i]``; it runs if ``included[i]``."""

    num_train: int
    num_clients: int  # every client that runs: the regular ones, then the included canary clients
    rows: IntArray  # (canaries, examples_per_canary)
    true_labels: IntArray  # (canaries, examples_per_canary)
    labels: IntArray  # (canaries,): the one wrong label of each canary client
    included: BoolArray

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def regular_clients(self) -> int:
        """How many partitions hold regular data (the first ones)."""
        return self.num_clients - int(self.included.sum())

    def kept_rows(self) -> IntArray:
        """The training rows the regular partitions are cut from: every row no canary client holds."""
        keep = np.ones(self.num_train, dtype=bool)
        keep[self.rows.ravel()] = False
        return np.flatnonzero(keep).astype(np.int64)

    def canary_of_partition(self, partition_id: int) -> int | None:
        """Which canary client ``partition_id`` is, or None for a regular client."""
        if partition_id < self.regular_clients:
            return None
        return int(np.flatnonzero(self.included)[partition_id - self.regular_clients])

    def of_partition(self, partition_id: int) -> tuple[IntArray, IntArray]:
        """The training rows and (wrong) labels ``partition_id`` holds beyond its regular data: all of a canary's."""
        canary = self.canary_of_partition(partition_id)
        if canary is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return self.rows[canary], np.full(self.rows.shape[1], self.labels[canary], dtype=np.int64)

    def partition_ids(self) -> list[int | None]:
        """Each canary client's partition id in the run, None for those left out."""
        ids: list[int | None] = [None] * self.size
        for offset, canary in enumerate(np.flatnonzero(self.included)):
            ids[int(canary)] = self.regular_clients + offset
        return ids

    def to_json(self) -> dict[str, Any]:
        """The record the run directory keeps: which canary clients ran, as which partition, on which rows."""
        return {
            "format": RECORD_FORMAT,
            "num_train": self.num_train,
            "num_clients": self.num_clients,
            "regular_clients": self.regular_clients,
            "rows": self.rows.tolist(),
            "true_labels": self.true_labels.tolist(),
            "labels": self.labels.tolist(),
            "included": self.included.astype(int).tolist(),
            "partition_ids": self.partition_ids(),
        }


def plan_canary_clients(
    config: AuditConfig, *, labels: npt.ArrayLike, num_classes: int, num_clients: int
) -> CanaryClientPlan:
    """The canary clients of ``config`` in a federation of ``num_clients`` (canary clients included)."""
    y = np.asarray(labels, dtype=np.int64)
    if num_classes < 2:
        raise ConfigError(f"audit.kind={KIND} needs a dataset of >= 2 classes, got {num_classes}")
    included = included_canary_clients(config)
    regular = num_clients - int(included.sum())
    if regular < 1:
        raise ConfigError(
            f"num_clients must be > {int(included.sum())} (the included canary clients) with audit.kind={KIND}, "
            f"got {num_clients}; simulations.audit adds the canary clients to num_clients itself"
        )
    m, per = config.canaries, config.examples_per_canary
    most = len(y) // 2
    if m * per > most:
        raise ConfigError(
            f"audit.canaries * audit.examples_per_canary must be <= {most} (half of the {len(y)} training "
            f"examples, the rest stay the regular clients' data), got {m} * {per} = {m * per}"
        )
    rng = np.random.default_rng([config.seed, 2])
    wrong = rng.integers(0, num_classes, size=m).astype(np.int64)
    free = np.ones(len(y), dtype=bool)
    rows = np.zeros((m, per), dtype=np.int64)
    for i in range(m):
        candidates = np.flatnonzero(free & (y != wrong[i]))
        if len(candidates) < per:
            raise ConfigError(
                f"audit.examples_per_canary={per}: only {len(candidates)} unused examples are left outside "
                f"class {int(wrong[i])} for canary client {i}; lower audit.canaries or audit.examples_per_canary"
            )
        rows[i] = rng.choice(candidates, size=per, replace=False)
        free[rows[i]] = False
    return CanaryClientPlan(
        num_train=len(y),
        num_clients=num_clients,
        rows=rows,
        true_labels=y[rows],
        labels=wrong,
        included=included,
    )


def client_scores(example_losses: npt.NDArray[np.float64], plan: CanaryClientPlan) -> npt.NDArray[np.float64]:
    """Each canary client's score: the mean loss over its examples (``example_losses`` in ``plan.rows`` order)."""
    scores: npt.NDArray[np.float64] = np.asarray(example_losses, dtype=np.float64).reshape(plan.rows.shape).mean(axis=1)
    return scores


def federation_record(config: AureonConfig, plan: CanaryClientPlan) -> dict[str, Any]:
    """What results.json's ``audit`` says of the federation that ran: its clients and its sampling rate."""
    from aureon.config.rules import sampled_clients

    sampled = sampled_clients(config)
    return {
        "num_clients": plan.num_clients,
        "regular_clients": plan.regular_clients,
        "canary_clients": plan.size,
        "canary_clients_included": int(plan.included.sum()),
        "sampled_per_round": sampled,
        "sample_rate": sampled / plan.num_clients,
        "note": "num_clients counts the included canary clients; the client-level accountant used this "
        "num_clients and sample rate",
    }
