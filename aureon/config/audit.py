"""``audit``: canaries for the one-run privacy audit (``python -m simulations.audit``).

Off by default (``canaries: 0``). With ``audit.canaries=m`` the clients' training
data gains the included half of m mislabelled canaries (``kind=mislabelled``,
aureon/privacy/canaries.py: audits a sample-level guarantee), or the federation
gains the included half of m canary clients, each holding ``examples_per_canary``
examples under one wrong label (``kind=canary_clients``,
aureon/privacy/canary_clients.py: audits a client-level guarantee), and
``simulations.audit`` scores all m with the final model. How many "in" and
"out" guesses the auditor makes is fixed here, before any score is seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from aureon.config.base import require

CANARY_KINDS = ("mislabelled", "canary_clients")
DEFAULT_GUESS_FRACTION = 10  # k_plus and k_minus default to canaries // this


@dataclass
class AuditConfig:
    """The auditor's canaries and guesses; ``seed`` is the auditor's coin, not the run's."""

    canaries: int = 0  # m; 0: no canaries (a normal run)
    seed: int = 0  # draws the canaries, their wrong labels, their clients and the inclusion coins
    kind: str = "mislabelled"  # a held-out training example with its label changed to another class
    # canary_clients: a whole client of held-out examples, all under one wrong label
    examples_per_canary: int = 8  # kind=canary_clients: the examples each canary client holds
    k_plus: int | None = None  # "in" guesses (lowest losses); None: canaries // 10
    k_minus: int | None = None  # "out" guesses (highest losses); None: canaries // 10
    confidence: float = 0.95
    delta: float | None = None  # None: the run's privacy.target_delta, or 1e-5 for a run without DP

    @property
    def enabled(self) -> bool:
        return self.canaries > 0

    def guesses(self) -> tuple[int, int]:
        """(k_plus, k_minus), the defaults filled in."""
        default = self.canaries // DEFAULT_GUESS_FRACTION
        return (
            default if self.k_plus is None else self.k_plus,
            default if self.k_minus is None else self.k_minus,
        )

    def validate(self) -> None:
        require(self.canaries >= 0, "audit.canaries", self.canaries, "an integer >= 0 (0: no audit)")
        require(self.seed >= 0, "audit.seed", self.seed, "an integer >= 0")
        require(self.kind in CANARY_KINDS, "audit.kind", self.kind, "one of " + ", ".join(map(repr, CANARY_KINDS)))
        require(self.examples_per_canary >= 1, "audit.examples_per_canary", self.examples_per_canary, "an integer >= 1")
        require(0.0 < self.confidence < 1.0, "audit.confidence", self.confidence, "in (0, 1)")
        if self.delta is not None:
            require(0.0 <= self.delta < 1.0, "audit.delta", self.delta, "in [0, 1), or null for the run's delta")
        for key, value in (("audit.k_plus", self.k_plus), ("audit.k_minus", self.k_minus)):
            if value is not None:
                require(value >= 0, key, value, "an integer >= 0, or null for audit.canaries // 10")
        if self.enabled:
            k_plus, k_minus = self.guesses()
            require(
                0 < k_plus + k_minus <= self.canaries,
                "audit.k_plus + audit.k_minus",
                k_plus + k_minus,
                f"in [1, audit.canaries={self.canaries}]",
            )
