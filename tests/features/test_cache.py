"""The feature store: entries round-trip, map read-only, and are never trusted when damaged."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from aureon.features.cache import BLOCK, FeatureStore, take_rows


def _array(rows: int = 10) -> np.ndarray:
    return np.random.default_rng(rows).normal(size=(rows, 3, 2, 2)).astype(np.float32)


def _write(store: FeatureStore, name: str, array: np.ndarray, *, chunk: int = 4) -> np.ndarray:
    chunks = [array[i : i + chunk] for i in range(0, len(array), chunk)]
    return store.write(name, shape=array.shape, dtype=array.dtype, chunks=chunks)


def test_an_entry_written_in_chunks_reads_back_as_one_read_only_memmap(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    array = _array()
    written = _write(store, "e", array)
    opened = store.open("e")
    assert isinstance(opened, np.memmap) and isinstance(written, np.memmap)
    np.testing.assert_array_equal(opened, array)
    np.testing.assert_array_equal(np.load(store.data_path("e")), array)  # a plain .npy file
    assert not opened.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        opened[0, 0, 0, 0] = 1.0
    assert [p.name for p in tmp_path.glob(".*tmp")] == []  # no temporary file left behind


def test_rows_taken_by_fancy_indexing_are_a_private_writable_copy(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    array = _array(50)
    _write(store, "e", array)
    mapped = store.open("e")
    assert mapped is not None
    rows = np.array([40, 3, 17, 3])
    for taken in (mapped[rows], take_rows(mapped, rows), take_rows(array, rows)):
        assert type(taken) is np.ndarray and taken.flags.writeable and not np.shares_memory(taken, mapped)
        np.testing.assert_array_equal(taken, array[rows])
        taken[:] = 0.0
    np.testing.assert_array_equal(store.open("e"), array)  # the file is untouched
    np.testing.assert_array_equal(mapped, array)  # and the mapping still reads it after take_rows


def _resident_kib(path: Path) -> int:
    """Resident KiB of this process's mappings of ``path`` (from /proc/self/smaps)."""
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0]:  # a mapping's header line: "start-end perms offset dev inode path"
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            resident += int(line.split()[1])
    return resident


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads /proc/self/smaps (Linux)")
def test_take_rows_gives_the_mapping_s_pages_back(tmp_path: Path) -> None:
    """A client's copy of its partition must not leave the whole file counted in its memory."""
    store = FeatureStore(tmp_path)
    array = np.random.default_rng(3).normal(size=(512, 64, 8, 8)).astype(np.float32)  # 8 MiB
    _write(store, "e", array, chunk=100)
    mapped = store.open("e")
    assert mapped is not None
    float(np.asarray(mapped).sum())  # touch every page, as copying rows from all over the file does
    assert _resident_kib(store.data_path("e")) > 4096
    taken = take_rows(mapped, np.arange(0, 512, 2))
    assert _resident_kib(store.data_path("e")) == 0
    np.testing.assert_array_equal(taken, array[::2])


def test_an_empty_array_round_trips(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    empty = _array(0)
    _write(store, "e", empty)
    opened = store.open("e")
    assert opened is not None and opened.shape == (0, 3, 2, 2) and opened.dtype == np.float32


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "append", "no manifest", "bad manifest", "no data"])
def test_a_damaged_entry_is_a_miss_and_a_rewrite_repairs_it(tmp_path: Path, damage: str) -> None:
    store = FeatureStore(tmp_path)
    array = _array()
    _write(store, "e", array)
    data, manifest = store.data_path("e"), store.manifest_path("e")
    content = bytearray(data.read_bytes())
    if damage == "flip a byte":
        content[-7] ^= 0x10  # same size, same header: only the checksum can tell
        data.write_bytes(bytes(content))
    elif damage == "truncate":
        data.write_bytes(bytes(content[:-16]))
    elif damage == "append":
        data.write_bytes(bytes(content) + b"\0" * 16)
    elif damage == "no manifest":
        manifest.unlink()
    elif damage == "bad manifest":
        manifest.write_text(manifest.read_text()[:-9])
    else:
        data.unlink()
    assert store.open("e") is None
    assert not store.present("e") or damage == "flip a byte"  # present() reads no content
    _write(store, "e", array)
    np.testing.assert_array_equal(store.open("e"), array)


def test_damage_past_the_first_checksum_block_is_found(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    array = np.random.default_rng(4).normal(size=(3, BLOCK // 4 // 3 + 1000)).astype(np.float32)  # 2 blocks
    _write(store, "e", array, chunk=1)
    assert len(json.loads(store.manifest_path("e").read_text())["crc32"]) == 2
    with open(store.data_path("e"), "r+b") as handle:
        handle.seek(BLOCK + 100)
        byte = handle.read(1)
        handle.seek(BLOCK + 100)
        handle.write(bytes([byte[0] ^ 1]))
    assert store.present("e") and store.open("e") is None


def test_chunks_that_do_not_fit_the_declared_shape_leave_no_entry(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    array = _array()
    with pytest.raises(ValueError, match="held 8 rows, expected 10"):
        store.write("short", shape=array.shape, dtype=array.dtype, chunks=[array[:8]])
    with pytest.raises(ValueError, match=r"a chunk of shape \(10, 3, 4\)"):
        store.write("odd", shape=array.shape, dtype=array.dtype, chunks=[array.reshape(10, 3, 4)])
    with pytest.raises(ValueError, match="more than the 10 rows"):
        store.write("long", shape=array.shape, dtype=array.dtype, chunks=[array, array])
    assert store.open("short") is None and store.open("odd") is None and store.open("long") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.npy"]  # renamed, never given a manifest
    with pytest.raises(ValueError, match="entry name must match"):
        store.open("../escape")


def _writer(directory: str, name: str, log: str, locked: bool) -> None:
    store = FeatureStore(directory)
    array = _array(200)

    def compute() -> None:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough that the three processes overlap
        _write(store, name, array, chunk=7)

    if not locked:
        compute()
        return
    with store.locked(name):
        if store.open(name) is None:
            compute()


@pytest.mark.parametrize("locked", [True, False])
def test_concurrent_writers_on_a_cold_cache_leave_one_valid_entry(tmp_path: Path, locked: bool) -> None:
    """With the lock, one process computes and the others read; without it, the last rename wins."""
    log = tmp_path / "computed"
    context = multiprocessing.get_context("fork")  # the children use numpy and files only
    workers = [context.Process(target=_writer, args=(str(tmp_path), "e", str(log), locked)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(log.read_text().split()) == (1 if locked else 3)
    np.testing.assert_array_equal(FeatureStore(tmp_path).open("e"), _array(200))
