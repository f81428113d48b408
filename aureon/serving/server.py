"""Running an ASGI app on uvicorn: in the foreground (the serve command) or on a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn


def uvicorn_config(app: Any, *, host: str, port: int, sock: socket.socket | None = None) -> uvicorn.Config:
    """uvicorn with the websockets implementation for /ws and its own logging kept quiet."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        backlog=4096,
        lifespan="on",
    )


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``: ``port``, or any free port for 0 (the caller reads it back)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def serve_forever(app: Any, *, host: str, port: int, on_ready: Any = None) -> None:
    """Serve ``app`` until interrupted; ``on_ready(url)`` once the socket listens."""
    sock = bound_socket(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn_config(app, host=host, port=port))
    if on_ready is not None:
        on_ready(url)
    server.run(sockets=[sock])


class BackgroundServer:
    """An app served by uvicorn on a daemon thread of this process (the dashboard during a run)."""

    def __init__(self, app: Any, *, host: str, port: int) -> None:
        self.sock = bound_socket(host, port)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn_config(app, host=host, port=self.port))
        self.thread = threading.Thread(target=self._run, name="aureon-dashboard", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self, *, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
