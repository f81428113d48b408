"""A client's privacy ledger: every DP release ever made from one dataset, owned by the client.

The ledger is keyed by a fingerprint of the client's own data, not by anything
the server chooses, so a new run (or a server that invents a new run key) on
the same data continues the same ledger. It is charged *before* a round
trains, and written atomically, so a crash can only over-count. It never
restarts from zero by accident: once a state directory holds a ledger, a
missing or unreadable ledger file stops the client; only the operator's
explicit ``python -m clients ledger reset`` forgets spent epsilon.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NotRequired, TypedDict

from aureon.exceptions import LedgerError, PrivacyBudgetExhausted
from aureon.files import atomic_write_text
from aureon.privacy.accounting import DpPlan, create_accountant
from aureon.privacy.floor import FLOOR_ACCOUNTANT, PrivacyFloor

LEDGER_FILE: Final = "privacy-ledger.json"
MARKER_FILE: Final = "aureon-client-state.json"
FORMAT_VERSION: Final = 1
RESET_HINT: Final = "`python -m clients ledger reset` forgets spent epsilon on purpose"


_CHECKSUM: Final = "sha256"


class EntryRecord(TypedDict):
    """A LedgerEntry as the ledger file stores it."""

    run: str
    round: int
    noise_multiplier: float
    sample_rate: float
    steps: int


class DatasetRecord(TypedDict):
    """The releases made from one dataset, in the ledger file."""

    entries: list[EntryRecord]


class ResetRecord(TypedDict):
    """One reset, kept in the file so that forgotten epsilon stays on record."""

    time: float
    data: str  # the dataset's fingerprint, or "*" for a lost or damaged ledger
    rounds: int | None  # None when the ledger was lost and its rounds are unknown
    runs: list[str]
    note: NotRequired[str]


class LedgerDocument(TypedDict):
    """The whole ledger file (its checksum added when written)."""

    format: int
    datasets: dict[str, DatasetRecord]
    resets: list[ResetRecord]


def _checksum(document: Mapping[str, object]) -> str:
    """A digest of the ledger's content: a flipped digit must not silently lower spent epsilon."""
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    """One round's DP-SGD release: ``steps`` Poisson-sampled Gaussian steps."""

    run: str
    round: int
    noise_multiplier: float
    sample_rate: float
    steps: int

    def to_json(self) -> EntryRecord:
        return {
            "run": self.run,
            "round": self.round,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
        }

    @classmethod
    def from_json(cls, raw: object) -> LedgerEntry:
        if not isinstance(raw, dict):
            raise ValueError(f"an entry must be an object, got {type(raw).__name__}")
        entry = cls(
            run=str(raw["run"]),
            round=int(raw["round"]),
            noise_multiplier=float(raw["noise_multiplier"]),
            sample_rate=float(raw["sample_rate"]),
            steps=int(raw["steps"]),
        )
        if not (math.isfinite(entry.noise_multiplier) and entry.noise_multiplier > 0):
            raise ValueError(f"noise_multiplier must be finite and > 0, got {entry.noise_multiplier}")
        if not 0 < entry.sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {entry.sample_rate}")
        if entry.steps < 0:
            raise ValueError(f"steps must be >= 0, got {entry.steps}")
        return entry


def compose_history(entries: Iterable[LedgerEntry]) -> list[tuple[float, float, int]]:
    """Opacus accountant history for ``entries``: equal mechanisms merged (composition commutes)."""
    steps: dict[tuple[float, float], int] = {}
    for entry in entries:
        key = (entry.noise_multiplier, entry.sample_rate)
        steps[key] = steps.get(key, 0) + entry.steps
    return [(sigma, rate, count) for (sigma, rate), count in steps.items() if count > 0]


def epsilon_of(entries: Iterable[LedgerEntry], *, delta: float, accountant: str) -> float:
    """Epsilon of the composition of ``entries`` at ``delta`` (0 before any release)."""
    history = compose_history(entries)
    if not history:
        return 0.0
    composed = create_accountant(accountant)
    composed.history = history
    return float(composed.get_epsilon(delta=delta))


@dataclass
class PrivacyLedger:
    """The releases made from one dataset (``data`` is its fingerprint)."""

    data: str
    entries: list[LedgerEntry] = field(default_factory=list)

    def run_entries(self, run: str) -> list[LedgerEntry]:
        return [entry for entry in self.entries if entry.run == run]

    def epsilon(self, *, delta: float, accountant: str, run: str | None = None) -> float:
        """Lifetime epsilon, or one run's share when ``run`` is given."""
        entries = self.entries if run is None else self.run_entries(run)
        return epsilon_of(entries, delta=delta, accountant=accountant)

    def with_entry(self, entry: LedgerEntry) -> PrivacyLedger:
        """A copy with ``entry`` charged (to project a round before training it)."""
        return PrivacyLedger(data=self.data, entries=[*self.entries, entry])


def describe(ledger: PrivacyLedger, *, delta: float, accountant: str = "rdp") -> str:
    """One line for an operator: which data, how many rounds of which runs, epsilon at ``delta``."""
    runs = sorted({entry.run for entry in ledger.entries})
    spent = ledger.epsilon(delta=delta, accountant=accountant)
    return (
        f"{ledger.data}: epsilon {spent:.3f} at delta {delta} ({accountant}) over "
        f"{len(ledger.entries)} rounds of {len(runs)} runs"
    )


class LedgerStore:
    """The ledgers of one client state directory (one file, every dataset it has trained on)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LEDGER_FILE
        self.marker = self.state_dir / MARKER_FILE

    def _document(self) -> LedgerDocument:
        """The whole ledger file; an empty one for a state directory never used before."""
        if not self.path.exists():
            if self.marker.exists():
                raise LedgerError(
                    f"privacy ledger {self.path} is missing, but {self.marker} shows this "
                    f"client has trained before: refusing to restart its spent epsilon from zero "
                    f"({RESET_HINT})"
                )
            return {"format": FORMAT_VERSION, "datasets": {}, "resets": []}
        try:
            return _parse_document(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise LedgerError(
                f"privacy ledger {self.path} is unreadable ({error}): refusing to restart "
                f"its spent epsilon from zero ({RESET_HINT})"
            ) from None

    def _write(self, document: LedgerDocument) -> None:
        atomic_write_text(self.path, json.dumps({**document, _CHECKSUM: _checksum(document)}, indent=1))

    def load(self, data: str) -> PrivacyLedger:
        """The ledger of dataset ``data`` (empty if this directory never trained on it)."""
        block: DatasetRecord = self._document()["datasets"].get(data, {"entries": []})
        return PrivacyLedger(data=data, entries=[LedgerEntry.from_json(r) for r in block["entries"]])

    def save(self, ledger: PrivacyLedger) -> None:
        """Write ``ledger`` atomically; the marker goes first, so a lost ledger is noticed."""
        document = self._document()
        if not self.marker.exists():
            atomic_write_text(self.marker, json.dumps({"format": FORMAT_VERSION, "created": time.time()}))
        document["datasets"][ledger.data] = {"entries": [e.to_json() for e in ledger.entries]}
        self._write(document)

    def datasets(self) -> dict[str, PrivacyLedger]:
        """Every dataset this directory has a ledger for."""
        return {data: self.load(data) for data in self._document()["datasets"]}

    def reset(self, data: str | None = None) -> list[PrivacyLedger]:
        """Forget the ledger of ``data`` (every dataset when None); returns what was forgotten.

        The reset itself is recorded in the file, so that it stays visible later.
        """
        try:
            document = self._document()
        except LedgerError as lost:
            if data is not None:
                raise
            # The operator acknowledges a lost or damaged ledger: start an empty one, on record.
            document = {
                "format": FORMAT_VERSION,
                "datasets": {},
                "resets": [{"time": time.time(), "data": "*", "rounds": None, "runs": [], "note": str(lost)}],
            }
            self._write(document)
            return []
        chosen = list(document["datasets"]) if data is None else [data]
        missing = [d for d in chosen if d not in document["datasets"]]
        if missing:
            raise LedgerError(f"privacy ledger {self.path} has no dataset {missing[0]!r}")
        forgotten = [self.load(d) for d in chosen]
        for ledger in forgotten:
            del document["datasets"][ledger.data]
            document["resets"].append(
                {
                    "time": time.time(),
                    "data": ledger.data,
                    "rounds": len(ledger.entries),
                    "runs": sorted({e.run for e in ledger.entries}),
                }
            )
        self._write(document)
        return forgotten


def _parse_document(raw: object) -> LedgerDocument:
    """The ledger file's content, checked whole; ValueError, KeyError or TypeError if it is not one."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_VERSION:
        raise ValueError(f"expected format {FORMAT_VERSION}")
    if raw.pop(_CHECKSUM, None) != _checksum(raw):
        raise ValueError("checksum mismatch: the file was damaged or edited")
    datasets = raw.get("datasets")
    if not isinstance(datasets, dict):
        raise ValueError("'datasets' must be an object")
    resets = raw.get("resets")
    if not isinstance(resets, list):
        raise ValueError("'resets' must be a list")
    return {
        "format": FORMAT_VERSION,
        "datasets": {
            data: {"entries": [LedgerEntry.from_json(entry).to_json() for entry in block["entries"]]}
            for data, block in datasets.items()
        },
        "resets": [_parse_reset(reset) for reset in resets],
    }


def _parse_reset(raw: object) -> ResetRecord:
    """One recorded reset, checked field by field."""
    if not isinstance(raw, dict):
        raise ValueError(f"a reset must be an object, got {type(raw).__name__}")
    when, data, rounds, runs = raw.get("time"), raw.get("data"), raw.get("rounds"), raw.get("runs")
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise ValueError(f"a reset's 'time' must be a number, got {when!r}")
    if not isinstance(data, str):
        raise ValueError(f"a reset's 'data' must be a string, got {data!r}")
    if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int)):
        raise ValueError(f"a reset's 'rounds' must be an integer or null, got {rounds!r}")
    if not isinstance(runs, list) or not all(isinstance(run, str) for run in runs):
        raise ValueError(f"a reset's 'runs' must be a list of strings, got {runs!r}")
    reset: ResetRecord = {"time": when, "data": data, "rounds": rounds, "runs": [str(run) for run in runs]}
    if "note" in raw:
        note = raw["note"]
        if not isinstance(note, str):
            raise ValueError(f"a reset's 'note' must be a string, got {note!r}")
        reset["note"] = note
    return reset


BUDGET_TOLERANCE: Final = 0.02  # calibration meets the target to within 0.5%; allow the run's last round


def charge(ledger: PrivacyLedger, *, plan: DpPlan, floor: PrivacyFloor, run: str, server_round: int) -> PrivacyLedger:
    """``ledger`` with one round of ``plan`` charged, or a refusal (nothing charged).

    Refuses a round that would take the run past its target epsilon, or the
    data's lifetime spend past the floor (measured the floor's own way).
    """
    entry = LedgerEntry(
        run=run,
        round=server_round,
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        steps=plan.steps_per_round,
    )
    after = ledger.with_entry(entry)
    delta, accountant = plan.target_delta, plan.accountant
    run_after = after.epsilon(delta=delta, accountant=accountant, run=run)
    if run_after > plan.target_epsilon * (1.0 + BUDGET_TOLERANCE):
        run_spent = ledger.epsilon(delta=delta, accountant=accountant, run=run)
        raise PrivacyBudgetExhausted(
            f"privacy budget spent: epsilon {run_spent:.3f} of privacy.target_epsilon="
            f"{plan.target_epsilon} used; another round would reach {run_after:.3f} "
            f"(delta={delta})"
        )
    if math.isfinite(floor.max_epsilon):
        projected = after.epsilon(delta=floor.max_delta, accountant=FLOOR_ACCOUNTANT)
        if projected > floor.max_epsilon:
            spent = ledger.epsilon(delta=floor.max_delta, accountant=FLOOR_ACCOUNTANT)
            floor.check_spend(spent=spent, projected=projected, delta=floor.max_delta)
    return after


def charge_round(
    store: LedgerStore,
    *,
    data: str,
    plan: DpPlan,
    floor: PrivacyFloor,
    run: str,
    server_round: int,
) -> float:
    """Charge one round to the stored ledger of ``data`` before it trains; return lifetime epsilon."""
    after = charge(store.load(data), plan=plan, floor=floor, run=run, server_round=server_round)
    store.save(after)
    return after.epsilon(delta=plan.target_delta, accountant=plan.accountant)
