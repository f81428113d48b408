"""Fuzzing the client's own files: its state file and its privacy ledger.

A damaged file must stop the client with one line naming the file, never a
traceback and never a silent fresh start.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from hypothesis import given

from aureon import keys
from aureon.exceptions import LedgerError
from aureon.federated.client_state import ClientStateError, ClientStateStore, SavedState
from aureon.privacy.ledger import LEDGER_FILE, LedgerEntry, LedgerStore, PrivacyLedger
from tests.security.test_fuzz_readers import FUZZ, damaged


def _state_file_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        store = ClientStateStore(state_dir=Path(folder), run_key="run", partition_id=0)
        reply = RecordDict({
            keys.ARRAYS: ArrayRecord({"w": Array(np.arange(6, dtype=np.float32).reshape(2, 3))}),
            keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: 10, keys.EPSILON: 0.5}),
        })
        store.save(SavedState(round=3, digest="ab" * 32, after=RecordDict(), reply=reply))
        return store.path.read_bytes()


def _ledger_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        entry = LedgerEntry(run="r", round=1, noise_multiplier=1.2, sample_rate=0.05, steps=20)
        LedgerStore(Path(folder)).save(PrivacyLedger(data="builtin:digits", entries=[entry]))
        return (Path(folder) / LEDGER_FILE).read_bytes()


@FUZZ
@given(damaged(_state_file_bytes()))
def test_client_state_loader_on_damaged_files(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = ClientStateStore(state_dir=Path(folder), run_key="run", partition_id=0)
        store.path.parent.mkdir(parents=True)
        store.path.write_bytes(content)
        try:
            store.load()
        except ClientStateError as error:
            assert "\n" not in str(error) and str(store.path) in str(error)


@FUZZ
@given(damaged(_ledger_bytes()))
def test_ledger_loader_on_damaged_files(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = LedgerStore(Path(folder))
        store.path.write_bytes(content)
        try:
            store.load("builtin:digits")
        except LedgerError as error:
            assert "\n" not in str(error) and str(store.path) in str(error)
