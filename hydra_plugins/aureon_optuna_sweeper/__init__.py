"""AUREON's Hydra sweeper on Optuna 5: ``hydra/sweeper=optuna``, the official plugin's override syntax.

Hydra imports every public module of this package when it scans for plugins,
so the modules it loads (this one, ``config``, ``optuna_sweeper``) import no
Optuna: a run that does not sweep pays nothing for the plugin.
"""
