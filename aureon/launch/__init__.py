"""Launching runs: config <-> Flower run_config, simulation engine, processes."""
