"""Hydra entry points for simulation mode and sweeps."""
