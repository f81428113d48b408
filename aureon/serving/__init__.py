"""Serving a run's model (ASGI app, micro-batching), batch prediction and the live dashboard.

Nothing heavy is imported here: the commands import the module they need.
"""
