"""The partition cache: the same split as flwr-datasets computes, once per machine, never trusted when damaged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aureon.config import DirichletPartitionConfig, IidPartitionConfig, PartitionConfig
from aureon.data import client_indices, partition, partition_indices
from aureon.data.partition_cache import PartitionCache, partition_key
from aureon.exceptions import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _labels(n: int = 600, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=n).astype(np.int64)


def _no_computing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> list[np.ndarray]:
        raise AssertionError("the split was computed again instead of read from the cache")

    monkeypatch.setattr(partition, "partition_indices", refuse)


@pytest.mark.parametrize("config", [IidPartitionConfig(), DirichletPartitionConfig(alpha=0.5, min_partition_size=5)])
def test_each_client_reads_the_split_flwr_datasets_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: PartitionConfig
) -> None:
    labels = _labels()
    expected = partition_indices(labels, config, 4, seed=7)
    PartitionCache(tmp_path).ensure(labels, config, 4, seed=7)
    _no_computing(monkeypatch)  # from here on, every client reads its slice from disk
    for pid in range(4):
        got = client_indices(labels, config, pid, 4, seed=7, cache_dir=tmp_path)
        np.testing.assert_array_equal(got, expected[pid])
        assert got.dtype == np.int64 and got.flags.writeable


def test_a_miss_is_computed_once_and_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels, config = _labels(), IidPartitionConfig()
    first = client_indices(labels, config, 2, 3, seed=0, cache_dir=tmp_path)
    assert [p.suffix for p in tmp_path.glob("*.partition")] == [".partition"]
    _no_computing(monkeypatch)
    np.testing.assert_array_equal(client_indices(labels, config, 2, 3, seed=0, cache_dir=tmp_path), first)


def test_the_key_changes_with_everything_that_decides_the_split() -> None:
    labels, config = _labels(), DirichletPartitionConfig(alpha=0.5)
    base = partition_key(labels, config, 4, 0)
    other_labels = labels.copy()
    other_labels[0] = (other_labels[0] + 1) % 10
    variants = [
        partition_key(other_labels, config, 4, 0),
        partition_key(labels, DirichletPartitionConfig(alpha=0.6), 4, 0),
        partition_key(labels, IidPartitionConfig(), 4, 0),
        partition_key(labels, config, 5, 0),
        partition_key(labels, config, 4, 1),
    ]
    assert base == partition_key(labels.copy(), config, 4, 0)
    targets = np.linspace(0.0, 0.9, len(labels))  # regression targets that all truncate to 0
    assert partition_key(targets, config, 4, 0) != partition_key(targets / 2, config, 4, 0)
    assert len({base, *variants}) == 6


@pytest.mark.parametrize("damage", ["flip an index", "flip a header byte", "truncate", "append", "empty", "not ours"])
def test_a_damaged_entry_is_recomputed_and_repaired(tmp_path: Path, damage: str) -> None:
    labels, config = _labels(), DirichletPartitionConfig(alpha=0.5)
    cache = PartitionCache(tmp_path)
    path = cache.ensure(labels, config, 3, seed=1)
    expected = partition_indices(labels, config, 3, seed=1)
    data = bytearray(path.read_bytes())
    if damage == "flip an index":
        data[-8] ^= 0x01  # the last index of the last partition
    elif damage == "flip a header byte":
        data[50] ^= 0x20
    elif damage == "truncate":
        data = data[:-8]
    elif damage == "append":
        data += b"\0" * 8
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"#!/bin/sh\n" + bytes(200))
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(cache.client_indices(labels, config, 2, 3, seed=1), expected[2])
    assert cache.ensure(labels, config, 3, seed=1) == path
    np.testing.assert_array_equal(cache.client_indices(labels, config, 2, 3, seed=1), expected[2])
    header = bytes(path.read_bytes())
    assert header.startswith(b"AUREONPI")


def test_an_entry_for_another_number_of_partitions_is_not_read_as_this_one(tmp_path: Path) -> None:
    labels, config = _labels(), IidPartitionConfig()
    cache = PartitionCache(tmp_path)
    two = cache.ensure(labels, config, 2, seed=0)
    three = cache.path(partition_key(labels, config, 3, 0))
    three.write_bytes(two.read_bytes())  # a file under the wrong name
    np.testing.assert_array_equal(cache.client_indices(labels, config, 0, 3, seed=0), np.arange(200))


def test_a_bad_partition_id_names_the_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"partition-id must be in \[0, 3\), got 3"):
        client_indices(_labels(), IidPartitionConfig(), 3, 3, seed=0, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


# A client process with a warm cache: which of flwr-datasets' heavy dependencies it loaded.
_CLIENT = """
import json, sys
import numpy as np
from aureon.config import IidPartitionConfig
from aureon.data import client_indices
labels = np.arange(90, dtype=np.int64) % 10
rows = client_indices(labels, IidPartitionConfig(), 1, 3, seed=0, cache_dir=sys.argv[1])
heavy = ("flwr_datasets", "datasets", "pyarrow", "pandas")
print(json.dumps({"rows": rows.tolist(), "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_a_client_with_a_warm_cache_never_imports_flwr_datasets(tmp_path: Path) -> None:
    labels = np.arange(90, dtype=np.int64) % 10
    PartitionCache(tmp_path).ensure(labels, IidPartitionConfig(), 3, seed=0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"rows": list(range(30, 60)), "loaded": []}
