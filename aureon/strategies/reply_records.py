"""A reply's records read straight from its RecordDict, without Flower's per-access copies.

``RecordDict.metric_records`` (and ``array_records``, ``config_records``)
builds a new type-checked dict, synced with its parent, on every access: tens
of microseconds each. The wrappers read every reply several times per round,
so at a thousand replies those views cost the server seconds a round. These
functions return the same records, in the same order, from the RecordDict's
items.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict


def metric_items(content: RecordDict) -> list[tuple[str, MetricRecord]]:
    """``content.metric_records.items()``, in order."""
    return [(name, record) for name, record in content.items() if isinstance(record, MetricRecord)]


def first_metrics(content: RecordDict) -> MetricRecord | None:
    """The first MetricRecord ``content`` carries, or None."""
    return next((record for record in content.values() if isinstance(record, MetricRecord)), None)


def array_record_names(content: RecordDict) -> list[str]:
    """``list(content.array_records)``, in order."""
    return [name for name, record in content.items() if isinstance(record, ArrayRecord)]


def config_record(content: RecordDict, name: str) -> ConfigRecord | None:
    """``content.config_records.get(name)``."""
    record = content.get(name)
    return record if isinstance(record, ConfigRecord) else None
