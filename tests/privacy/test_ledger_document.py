"""The ledger file is checked whole, its record of resets included, even when its checksum is right."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aureon.exceptions import LedgerError
from aureon.privacy.ledger import LEDGER_FILE, LedgerEntry, LedgerStore, PrivacyLedger

ENTRY = LedgerEntry(run="a", round=1, noise_multiplier=1.1, sample_rate=0.01, steps=100)


def _write_signed(path: Path, document: dict[str, object]) -> None:
    """A ledger file as a careful forger would write it: the sha256 of its sorted JSON included."""
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    path.write_text(json.dumps({**document, "sha256": digest}))


def test_a_reset_of_a_lost_ledger_is_kept_and_read_back(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path)
    store.save(PrivacyLedger(data="x", entries=[ENTRY]))
    (tmp_path / LEDGER_FILE).write_text("{damaged")
    assert store.reset() == []
    store.save(PrivacyLedger(data="y", entries=[ENTRY]))
    document = json.loads((tmp_path / LEDGER_FILE).read_text())
    (reset,) = document["resets"]
    assert reset["data"] == "*" and reset["rounds"] is None and "unreadable" in reset["note"]
    assert LedgerStore(tmp_path).load("y").entries == [ENTRY]


@pytest.mark.parametrize(
    ("resets", "problem"),
    [
        (None, "'resets' must be a list"),
        ([["x"]], "a reset must be an object"),
        ([{"time": "now", "data": "x", "rounds": 1, "runs": []}], "'time' must be a number"),
        ([{"time": 1.0, "data": 3, "rounds": 1, "runs": []}], "'data' must be a string"),
        ([{"time": 1.0, "data": "x", "rounds": True, "runs": []}], "'rounds' must be an integer or null"),
        ([{"time": 1.0, "data": "x", "rounds": 1, "runs": [1]}], "'runs' must be a list of strings"),
        ([{"time": 1.0, "data": "x", "rounds": 1, "runs": [], "note": 5}], "'note' must be a string"),
    ],
)
def test_a_signed_file_with_a_malformed_reset_record_is_unreadable(
    tmp_path: Path, resets: object, problem: str
) -> None:
    document: dict[str, object] = {"format": 1, "datasets": {"x": {"entries": [ENTRY.to_json()]}}}
    if resets is not None:
        document["resets"] = resets
    _write_signed(tmp_path / LEDGER_FILE, document)
    with pytest.raises(LedgerError, match=f"is unreadable .*{problem}"):
        LedgerStore(tmp_path).load("x")


def test_a_signed_well_formed_file_loads(tmp_path: Path) -> None:
    resets = [{"time": 1.0, "data": "z", "rounds": 2, "runs": ["b"]}]
    _write_signed(
        tmp_path / LEDGER_FILE, {"format": 1, "datasets": {"x": {"entries": [ENTRY.to_json()]}}, "resets": resets}
    )
    assert LedgerStore(tmp_path).load("x").entries == [ENTRY]
