"""Start and stop the processes of a deployment by PID, children included.

Every process starts in a session of its own, so its process group holds it
and whatever it spawns (Flower's SuperNode and SuperLink start SuperExec
workers and app processes that outlive their parent when it is killed).
Stopping signals that group, never a name pattern, so other runs on the
same machine are left alone.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aureon.exceptions import AureonError
from aureon.launch.quiet import QUIET_FLOWER_ENV


class LaunchError(AureonError):
    """A process of the deployment could not start, or stopped when it should run."""


def quiet_flower_env(flwr_home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of one run's Flower processes: own FLWR_HOME, no telemetry, no installs."""
    env = dict(os.environ if base is None else base)
    # Flower starts its helpers (flower-superlink, flwr-serverapp, ...) by name: find them
    # beside this interpreter even when the virtual environment was not activated.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        {
            **QUIET_FLOWER_ENV,
            "FLWR_HOME": str(flwr_home),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def flower_executable(name: str) -> str:
    """``name`` from this interpreter's environment first, then from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise LaunchError(f"`{name}` is neither beside {sys.executable} nor on PATH; install aureon's dependencies")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _listening_pid(port: int) -> int | None:
    """Which process holds ``port`` (Linux /proc), for a helpful error; None if unknown."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def ensure_port_free(host: str, port: int, *, what: str) -> None:
    """Raise a LaunchError naming the port and its holder when ``host:port`` is taken.

    SO_REUSEADDR, as the servers themselves bind: a port left in TIME_WAIT by a
    crashed run is free to reuse (a restart keeps its ports), a listener is not.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise LaunchError(f"{what} cannot bind {host}:{port}: {err.strerror}") from err
            holder = _listening_pid(port)
            who = f" by PID {holder}" if holder is not None else ""
            raise LaunchError(
                f"{what} port {port} on {host} is already taken{who}; stop that process or choose another port"
            ) from err


def wait_for_port(host: str, port: int, *, timeout: float) -> bool:
    """True once something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


@dataclass
class ManagedProcess:
    """A started process, its log file and its process group."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def log_contains(self, text: str) -> bool:
        return text in self.log_tail(200_000)

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a machine going down would."""
        _signal_group(self.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``grace`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self.alive() or _group_alive(self.pid)):
            time.sleep(0.1)
        _signal_group(self.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def start_process(
    name: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
) -> ManagedProcess:
    """Start ``command`` in a new session with stdout and stderr going to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ManagedProcess(name=name, popen=popen, log_path=log_path)


class ProcessGroup:
    """The processes of one deployment; a context manager that stops them all on exit."""

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []

    def add(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process

    def stop_all(self, *, grace: float = 10.0) -> None:
        """Stop in reverse start order (clients before the SuperLink)."""
        for process in reversed(self.processes):
            process.stop(grace=grace)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
