"""Differential privacy: noise calibration, local entropy, the client's floor and ledger, DP-SGD."""

from aureon.privacy.accounting import DpPlan, plan_dp, sample_rate_for, steps_per_round

__all__ = ["DpPlan", "plan_dp", "sample_rate_for", "steps_per_round"]
