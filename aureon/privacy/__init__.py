"""Differential privacy: Opacus accounting, budgets and noise calibration."""

from aureon.privacy.accounting import (
    DpPlan,
    accountant_from_json,
    accountant_to_json,
    ensure_budget,
    plan_dp,
    projected_epsilon,
    sample_rate_for,
    spent_epsilon,
    steps_per_round,
)

__all__ = [
    "DpPlan",
    "accountant_from_json",
    "accountant_to_json",
    "ensure_budget",
    "plan_dp",
    "projected_epsilon",
    "sample_rate_for",
    "spent_epsilon",
    "steps_per_round",
]
