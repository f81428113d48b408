"""The server's Prometheus metrics, in a registry of its own (two apps in one process do not mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """Request counts, latency, forward-pass batch sizes and errors."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aureon_requests", "Prediction requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "aureon_request_seconds",
            "Seconds from a prediction request's arrival to its answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "aureon_batch_rows", "Rows per forward pass", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.rows = Counter("aureon_rows", "Rows predicted", registry=self.registry)
        self.errors = Counter(
            "aureon_errors", "Requests refused or failed", ["endpoint", "reason"], registry=self.registry
        )

    def batch(self, rows: int) -> None:
        self.batch_size.observe(rows)
        self.rows.inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
