"""The client's privacy ledger: composition, persistence, and resets only on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opacus.accountants import RDPAccountant

from aureon.exceptions import LedgerError
from aureon.privacy.ledger import LEDGER_FILE, LedgerEntry, LedgerStore, PrivacyLedger, compose_history


def _entry(run: str, round_: int, sigma: float = 1.1, rate: float = 0.01, steps: int = 100) -> LedgerEntry:
    return LedgerEntry(run=run, round=round_, noise_multiplier=sigma, sample_rate=rate, steps=steps)


def test_equal_mechanisms_merge_and_others_compose() -> None:
    entries = [_entry("a", 1), _entry("b", 1), _entry("a", 2, sigma=2.0)]
    assert sorted(compose_history(entries)) == [(1.1, 0.01, 200), (2.0, 0.01, 100)]


def test_lifetime_and_per_run_epsilon_match_opacus() -> None:
    ledger = PrivacyLedger(data="d", entries=[_entry("a", 1), _entry("a", 2), _entry("b", 1)])
    whole, one_run = RDPAccountant(), RDPAccountant()
    whole.history = [(1.1, 0.01, 300)]
    one_run.history = [(1.1, 0.01, 200)]
    assert ledger.epsilon(delta=1e-5, accountant="rdp") == pytest.approx(whole.get_epsilon(1e-5))
    assert ledger.epsilon(delta=1e-5, accountant="rdp", run="a") == pytest.approx(one_run.get_epsilon(1e-5))
    assert PrivacyLedger(data="d").epsilon(delta=1e-5, accountant="rdp") == 0.0


def test_the_ledger_survives_a_new_store_and_keeps_datasets_apart(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path)
    store.save(PrivacyLedger(data="x", entries=[_entry("a", 1)]))
    store.save(PrivacyLedger(data="y", entries=[_entry("a", 1), _entry("a", 2)]))
    again = LedgerStore(tmp_path)
    assert again.load("x").entries == [_entry("a", 1)]
    assert len(again.load("y").entries) == 2
    assert again.load("z").entries == []  # new data, new ledger


def test_reset_forgets_only_on_purpose_and_leaves_a_trace(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path)
    store.save(PrivacyLedger(data="x", entries=[_entry("a", 1)]))
    store.save(PrivacyLedger(data="y", entries=[_entry("b", 1)]))
    (forgotten,) = store.reset("x")
    assert forgotten.entries == [_entry("a", 1)]
    assert store.load("x").entries == [] and len(store.load("y").entries) == 1
    resets = json.loads((tmp_path / LEDGER_FILE).read_text())["resets"]
    assert resets[0]["data"] == "x" and resets[0]["rounds"] == 1
    with pytest.raises(LedgerError, match="no dataset 'nope'"):
        store.reset("nope")


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        '{"format": 2, "datasets": {}}',
        '{"format": 1, "datasets": []}',
        '{"format": 1, "datasets": {"x": {"entries": [{"run": "a", "round": 1, '
        '"noise_multiplier": -1, "sample_rate": 0.1, "steps": 1}]}}}',
        '{"format": 1, "datasets": {"x": {"entries": [{"run": "a", "round": 1, '
        '"noise_multiplier": 1, "sample_rate": 1.5, "steps": 1}]}}}',
    ],
)
def test_an_unreadable_ledger_is_one_clear_error(tmp_path: Path, content: str) -> None:
    store = LedgerStore(tmp_path)
    store.save(PrivacyLedger(data="x", entries=[_entry("a", 1)]))
    (tmp_path / LEDGER_FILE).write_text(content)
    with pytest.raises(LedgerError, match=rf"privacy ledger {tmp_path / LEDGER_FILE} is unreadable"):
        store.load("x")
