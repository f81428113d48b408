"""Ray for an in-process simulation, started by AUREON rather than by Flower.

Starting Ray (its control store, raylet, agents and first workers) takes
seconds of CPU. Flower would start it when the simulation starts, after the
driver has imported torch and Flower and read its data, so round 1 paid for
all of it in sequence. ``RayStart`` begins right after the config is valid, in
a background thread, and the driver's imports and data loading run meanwhile;
Flower finds Ray running and uses it.

Ray's processes are started with ``PR_SET_PDEATHSIG`` bound to the thread that
started them, so the starting thread lives (a daemon, idle) until Ray is shut
down; otherwise the control store would die with it.

Also here: how many CPUs the local Ray gets (no more than the clients can use,
so a 2-client run on 16 cores starts 2 actors, each paying the imports, not 16),
the allocator setting its processes start with (``MALLOC_ENV``), and Ray's own
logging (``aureon.launch.quiet``).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import Any

from aureon.config import AureonConfig
from aureon.exceptions import AureonError
from aureon.launch.quiet import ray_log_args, set_simulation_env


class RayStartError(AureonError):
    """Ray could not be started or joined for the simulation."""


def local_cpus(config: AureonConfig, *, available: int | None = None) -> int:
    """CPUs for a local Ray: what the clients can use at once, at most what the machine has."""
    machine = available if available is not None else (os.cpu_count() or 1)
    wanted = math.ceil(config.num_clients * config.simulation.client_cpus)
    return max(1, min(machine, wanted))


def ray_init_args(config: AureonConfig) -> dict[str, Any]:
    """Arguments of ``ray.init`` for this run: a cluster address, or a local Ray sized to the clients."""
    args: dict[str, Any] = {"include_dashboard": False, **ray_log_args(verbose=config.verbose)}
    if config.simulation.ray_address:
        args["address"] = config.simulation.ray_address
    else:
        args["num_cpus"] = local_cpus(config)
        if config.simulation.client_gpus == 0:
            args["num_gpus"] = 0
    return args


# glibc gives every thread that allocates its own arena (up to 8 per core) and keeps
# freed memory there: torch's and Ray's threads left ~85 MB per client actor that way
# (measured: 428 -> 340 MB PSS for one mnist_dp client). Two arenas keep most of it.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


def set_local_ray_env() -> None:
    """Environment for the processes of a local Ray (they inherit the driver's); a user's value is kept."""
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)


@contextmanager
def _without_monitors() -> Iterator[None]:
    """A local Ray without its autoscaler monitor and log monitor (about 95 MB of Python processes).

    A fixed-size local Ray has nothing to autoscale, and with ``log_to_driver``
    off nothing reads the log monitor's output. ``ray.init`` has no option for
    either (``ray start`` has: ``--no-monitor``, ``--include-log-monitor``), so the
    parameters it builds are given both while it runs. A Ray whose parameters
    lack these fields is started as it is.
    """
    from ray._private import parameter

    original = parameter.RayParams

    class LeanRayParams(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if hasattr(self, "no_monitor") and hasattr(self, "include_log_monitor"):
                self.no_monitor = True
                self.include_log_monitor = False

    setattr(parameter, "RayParams", LeanRayParams)  # noqa: B010 (mypy refuses assigning to a class name)
    try:
        yield
    finally:
        setattr(parameter, "RayParams", original)  # noqa: B010


def _worker_pythonpath() -> str:
    """The driver's import path for Ray's workers, as Flower passes it (they inherit the environment)."""
    path = os.pathsep.join(sys.path)
    extra = os.environ.get("PYTHONPATH")
    return f"{path}{os.pathsep}{extra}" if extra else path


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM as ``SystemExit``, so that Ray's exit hook stops its processes (Ray sets the same
    handler when ``ray.init`` runs in the main thread; from another thread it cannot)."""
    raise SystemExit(128 + signum)


class RayStart:
    """``ray.init`` in a background thread; ``wait()`` before Flower needs it.

    If Ray is already running in this process (an earlier run, a test), nothing
    is started and that Ray is used as it is.
    """

    def __init__(self, config: AureonConfig) -> None:
        import ray

        self._ray = ray
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if ray.is_initialized():
            self._ready.set()
            return
        set_simulation_env()
        os.environ["PYTHONPATH"] = _worker_pythonpath()
        if not config.simulation.ray_address:
            set_local_ray_env()
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self._args = ray_init_args(config)
        self._lean = not config.simulation.ray_address and not config.verbose
        self._thread = threading.Thread(target=self._start, name="aureon-ray-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            with _without_monitors() if self._lean else nullcontext():
                self._ray.init(**self._args)
        except Exception as error:  # reported to the caller of wait()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        # Keep this thread (the parent of Ray's processes) until Ray is shut down.
        while self._ray.is_initialized():
            threading.Event().wait(1.0)

    def wait(self, timeout: float = 300.0) -> None:
        """Block until Ray runs; a start that failed or hangs raises ``RayStartError``."""
        if not self._ready.wait(timeout):
            raise RayStartError(f"Ray did not start within {timeout:.0f} s")
        if self._error is not None:
            where = self._args.get("address", "a local Ray")
            raise RayStartError(f"could not start {where}: {type(self._error).__name__}: {self._error}") from (
                self._error
            )
