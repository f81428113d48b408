"""Several worker processes on one study: this process is worker 0, the others are spawned.

Each worker opens the study by its address (journal file or database URL),
samples with its own seed (run seed + worker index) and runs its share of
``automl.n_trials`` until the shared deadline; each reports how many trials it
ran, so the caller can check that none was lost.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

# Seconds a spawned worker may take past the deadline (its last fold) before it is stopped.
GRACE_S = 10.0


def _entry(run: Callable[..., int], args: tuple[Any, ...], worker: int, results: Any) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        results.put((worker, run(*args, worker=worker), None))
    except BaseException as error:  # reported to the parent, which raises it with the worker's number
        results.put((worker, 0, f"{type(error).__name__}: {error}"))


def run_workers(run: Callable[..., int], args: tuple[Any, ...], *, n_workers: int, deadline: float) -> dict[int, int]:
    """Call ``run(*args, worker=i)`` in ``n_workers`` processes (0 here); trials run per worker."""
    if n_workers == 1:
        return {0: run(*args, worker=0)}
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's and sqlite's threads
    results = context.Queue()
    processes = [
        context.Process(target=_entry, args=(run, args, worker, results), name=f"automl-worker-{worker}")
        for worker in range(1, n_workers)
    ]
    for process in processes:
        process.start()
    counts = {0: run(*args, worker=0)}
    errors: list[str] = []
    for _ in processes:
        remaining = max(deadline + GRACE_S - time.time(), 1.0)
        try:
            worker, count, error = results.get(timeout=remaining)
        except Exception:
            break
        counts[worker] = count
        if error:
            errors.append(f"worker {worker}: {error}")
    for process in processes:
        process.join(timeout=max(deadline + GRACE_S - time.time(), 1.0))
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
            errors.append(f"{process.name} (pid {process.pid}) did not stop by the deadline and was terminated")
    if errors:
        from aureon.exceptions import AureonError

        raise AureonError("AutoML workers failed: " + "; ".join(errors))
    return counts
